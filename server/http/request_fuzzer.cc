// libFuzzer target for request parsing: the fuzz bytes are what a client sends on one
// connection. They are read the way the server reads them (request_reading.h: Beast's parser
// with the server's limits, a read buffer of ReadBufferBytes, the header and then the body, up
// to kRequestsMax pipelined requests), once in one piece and once in small chunks, and every
// request read whole has its target parsed by ParseTarget; the bytes are also parsed as a
// target themselves.
// Input: byte 0 picks the chunk size (low 6 bits, plus one) and the limits (high bit: the
// server's defaults; otherwise small ones the fuzzer can reach); the rest is the stream.
// Invariants (a violation aborts):
//   - both readings reach the same requests (how TCP splits the bytes changes nothing), and
//     the same end (an answer status, or the stream running out), with two exceptions, both
//     Beast's and both bounded by max_header_bytes and read_header_timeout: a malformed request
//     line may be answered 400 by one reading while the other waits for more until the stream
//     or the limit runs out (0 or 431): given part of a request line, Beast looks at it again
//     only once it has seen the header block's end after it, and a line too short to hold a
//     version can make it skip that end; and a header block that does not end within the
//     limit may be answered 431 or run out the stream (0), as Beast counts a little
//     differently on a whole block than on a partial one;
//   - a failed read is answered 400, 413 or 431, or closes (0);
//   - a request read whole has a header block within max_header_bytes and a body within
//     max_request_bytes;
//   - ParseTarget accepts only what its contract promises (path absolute, no control byte, no
//     "." or ".." segment; no control byte in the query) and refuses with InvalidArgument and a
//     message starting "invalid request target: ".
//
// Built two ways: by tools/fuzz (`tools/fuzz http`, clang -fsanitize=fuzzer with ASan and
// UBSan), and as //server/http:request_fuzzer_test, where core/catalog/fuzz_corpus_driver.cc
// runs the seeds below and seeded mutations of them.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/system/system_error.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/status/check.h"
#include "server/http/request_reading.h"
#include "server/http/target.h"

namespace bulwark::fuzz {
// Well-formed inputs for the corpus driver (and a starting corpus for libFuzzer).
std::vector<std::string> SeedInputs();
}  // namespace bulwark::fuzz

namespace bulwark::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

constexpr size_t kRequestsMax = 8;
// The small limits, so that mutated inputs of a few KiB cross them.
constexpr size_t kSmallHeaderBytes = 512;
constexpr size_t kSmallBodyBytes = 1024;
// ServerOptions' defaults (server.h).
constexpr size_t kDefaultHeaderBytes = 64 << 10;
constexpr size_t kDefaultBodyBytes = 32 << 20;

// A stream that hands out `data` at most `chunk` bytes per read, then reports end of file.
class ChunkedStream {
 public:
  ChunkedStream(absl::string_view data, size_t chunk) : data_(data), chunk_(chunk) {}

  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    if (data_.empty()) {
      ec = asio::error::eof;
      return 0;
    }
    ec = {};
    const size_t n = asio::buffer_copy(
        buffers, asio::const_buffer(data_.data(), std::min(chunk_, data_.size())));
    data_.remove_prefix(n);
    return n;
  }

  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    boost::system::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  absl::string_view data_;
  const size_t chunk_;
};

struct ReadRequest {
  std::string method;
  std::string target;
  unsigned version = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;

  bool operator==(const ReadRequest& other) const {
    return method == other.method && target == other.target && version == other.version &&
           fields == other.fields && body == other.body;
  }
};

struct Reading {
  std::vector<ReadRequest> requests;
  int end_status = -1;  // After the last request: 400/413/431, 0 (closed), -1 (kRequestsMax read).
  size_t consumed = 0;  // Stream bytes the requests read whole took.
};

// Reads requests from `stream` as a server connection does.
Reading ReadAll(absl::string_view stream, size_t chunk, size_t max_header_bytes,
                size_t max_body_bytes) {
  ChunkedStream in(stream, chunk);
  boost::beast::flat_buffer buffer(ReadBufferBytes(max_header_bytes));
  Reading reading;
  while (reading.requests.size() < kRequestsMax) {
    RequestParser parser;
    LimitParser(parser, max_header_bytes, max_body_bytes);
    boost::system::error_code ec;
    const size_t header_bytes = bhttp::read_header(in, buffer, parser, ec);
    if (ec) {
      reading.end_status = StatusForReadError(ec, /*reading_header=*/true);
      return reading;
    }
    if (HeaderTooLarge(header_bytes, max_header_bytes)) {
      reading.end_status = 431;
      return reading;
    }
    size_t body_bytes = 0;
    if (!parser.is_done()) {
      body_bytes = bhttp::read(in, buffer, parser, ec);
      if (ec) {
        reading.end_status = StatusForReadError(ec, /*reading_header=*/false);
        return reading;
      }
    }
    const bhttp::request<bhttp::string_body>& message = parser.get();
    CHECK(message.body().size() <= max_body_bytes) << message.body().size();
    ReadRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.version = message.version();
    for (const auto& field : message) {
      request.fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = message.body();
    reading.requests.push_back(std::move(request));
    reading.consumed += header_bytes + body_bytes;
  }
  return reading;
}

bool HasControlByte(absl::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

void CheckParseTarget(absl::string_view target) {
  const absl::StatusOr<Target> parsed = ParseTarget(target);
  if (!parsed.ok()) {
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument) << parsed.status();
    CHECK(absl::StartsWith(parsed.status().message(), "invalid request target: "))
        << parsed.status();
    return;
  }
  CHECK(absl::StartsWith(parsed->path, "/"));
  CHECK(!HasControlByte(parsed->path));
  for (absl::string_view segment : absl::StrSplit(parsed->path, '/')) {
    CHECK(segment != "." && segment != "..");
  }
  for (const auto& [key, value] : parsed->query) {
    CHECK(!HasControlByte(key) && !HasControlByte(value));
  }
}

}  // namespace
}  // namespace bulwark::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark::http;  // NOLINT: the fuzz entry point.
  if (size == 0) return 0;
  const size_t chunk = (data[0] & 0x3f) + 1;
  const bool defaults = (data[0] & 0x80) != 0;
  const size_t max_header = defaults ? kDefaultHeaderBytes : kSmallHeaderBytes;
  const size_t max_body = defaults ? kDefaultBodyBytes : kSmallBodyBytes;
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Reading whole = ReadAll(stream, std::max<size_t>(stream.size(), 1), max_header, max_body);
  const Reading chunked = ReadAll(stream, chunk, max_header, max_body);
  CHECK(whole.requests == chunked.requests)
      << whole.requests.size() << " vs " << chunked.requests.size() << " requests";
  CHECK(whole.consumed == chunked.consumed);
  const size_t block_end = stream.substr(whole.consumed).find("\r\n\r\n");
  const bool block_ends = block_end != absl::string_view::npos && block_end + 4 <= max_header;
  auto waited = [](int status) { return status == 0 || status == 431; };
  const bool malformed_line_missed = (whole.end_status == 400 && waited(chunked.end_status)) ||
                                     (chunked.end_status == 400 && waited(whole.end_status));
  const bool limit_counted_apart =
      !block_ends && waited(whole.end_status) && waited(chunked.end_status);
  CHECK(whole.end_status == chunked.end_status || malformed_line_missed || limit_counted_apart)
      << whole.end_status << " vs " << chunked.end_status << " (chunk " << chunk << ")";
  CHECK(whole.end_status == -1 || whole.end_status == 0 || whole.end_status == 400 ||
        whole.end_status == 413 || whole.end_status == 431)
      << whole.end_status;
  for (const ReadRequest& request : whole.requests) CheckParseTarget(request.target);
  CheckParseTarget(stream);
  return 0;
}

namespace bulwark::fuzz {

std::vector<std::string> SeedInputs() {
  // The first byte: chunk size and limits (see above).
  const std::vector<std::pair<char, std::string>> seeds = {
      {'\x07', "GET /v1/sys/health?standbyok=true&perfstandbyok=1 HTTP/1.1\r\nHost: v\r\n\r\n"},
      {'\x02',
       "LIST /v1/secret/a%20b/ HTTP/1.1\r\nHost: v\r\nX-Vault-Token: s.abc\r\n\r\n"
       "GET /v1/secret/x?list=true HTTP/1.1\r\nHost: v\r\n\r\n"},
      {'\x10',
       "PUT /v1/sys/unseal HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\n"
       "Content-Length: 14\r\n\r\n{\"key\":\"abcd\"}"},
      {'\x03',
       "POST /v1/secret/data/k HTTP/1.1\r\nHost: v\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"},
      {'\x3f',
       "PUT /v1/sys/plugins/catalog/secret/p HTTP/1.1\r\nHost: v\r\nExpect: 100-continue\r\n"
       "Content-Length: 2\r\n\r\n{}"},
      {'\x05', "GET /v1/sys/seal-status HTTP/1.0\r\n\r\n"},
      {'\x01', "DELETE /v1/sys/mounts/kv%2Fnested?x=%00 HTTP/1.1\r\nHost: v\r\n\r\n"},
      {'\x08', "GET /v1/../sys/seal HTTP/1.1\r\nHost: v\r\n\r\n"},
      {'\x09', "HEAD /v1/sys/health HTTP/1.1\r\nHost: v\r\nConnection: close\r\n\r\n"},
      {'\x86',
       "POST /v1/x HTTP/1.1\r\nHost: v\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
      {'\x04', "/v1/sys/health?a=1&b=%2e%2e&c+d=e+f"},
  };
  std::vector<std::string> out;
  for (const auto& [selector, stream] : seeds) out.push_back(std::string(1, selector) + stream);
  return out;
}

}  // namespace bulwark::fuzz
