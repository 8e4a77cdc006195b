// What both dispatchers (backend and database) do at the wire: parse a request's bytes into its
// message, with an error naming the method and the expected type, and serialize a reply.
#ifndef BULWARK_SDK_DISPATCH_WIRE_H_
#define BULWARK_SDK_DISPATCH_WIRE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace bulwark::sdk::internal {

// Errors: kInvalidArgument "<method>: the request is not a valid <type> (<n> bytes)". The
// bytes themselves are never quoted: they may hold secrets.
template <typename Message>
absl::StatusOr<Message> ParseRequest(absl::string_view bytes, absl::string_view method) {
  Message message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(method, ": the request is not a valid ",
                                                   message.GetTypeName(), " (", bytes.size(),
                                                   " bytes)"));
  }
  return message;
}

// Errors: kInternal when protobuf cannot serialize the message.
inline absl::StatusOr<std::string> SerializeReply(const google::protobuf::MessageLite& message) {
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialize ", message.GetTypeName()));
  }
  return bytes;
}

}  // namespace bulwark::sdk::internal

#endif  // BULWARK_SDK_DISPATCH_WIRE_H_
