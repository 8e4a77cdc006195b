// Vault's username templates (sdk/helper/template: Go text/template with Vault's functions), the
// subset database plugins' templates use:
//
//   {{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20)
//      (unix_time) | truncate 63 }}
//
// Actions are pipelines (`a | f x` passes a as f's last argument) of: .DisplayName, .RoleName,
// "strings", integers, (parenthesized pipelines), and the functions random N (base62),
// truncate N, truncate_sha256 N, uppercase, lowercase, replace OLD NEW, sha256 (hex), base64,
// unix_time, unix_time_millis, uuid, and printf FORMAT ARGS... (verbs %s, %d and %%). Anything
// else (Go's if/range/with, variables, timestamp) is refused when the template is parsed.
#ifndef BULWARK_EXAMPLES_POSTGRES_USERNAME_TEMPLATE_H_
#define BULWARK_EXAMPLES_POSTGRES_USERNAME_TEMPLATE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/env/random.h"
#include "sdk/database.h"

namespace bulwark::examples::postgres {

// Longest template accepted, and deepest nesting of parentheses.
inline constexpr size_t kUsernameTemplateBytesMax = 4096;
inline constexpr int kUsernameTemplateDepthMax = 16;

class UsernameTemplate {
 public:
  struct Node;

  // Parses `text`. kInvalidArgument naming the problem and its byte offset.
  static absl::StatusOr<UsernameTemplate> Parse(absl::string_view text);

  // Renders it for `metadata` (random parts from `random`, times from `now`). kInvalidArgument
  // when a function gets bad arguments (e.g. truncate with a negative length).
  absl::StatusOr<std::string> Render(const sdk::UsernameMetadata& metadata, Random& random,
                                     absl::Time now) const;

 private:
  // Literal text (is_text) or an action's pipeline.
  std::vector<std::shared_ptr<const Node>> parts_;
};

}  // namespace bulwark::examples::postgres

#endif  // BULWARK_EXAMPLES_POSTGRES_USERNAME_TEMPLATE_H_
