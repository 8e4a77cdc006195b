// Command-line flags the way Vault's CLI reads them (Go's flag package): "-name=value",
// "-name value", "--name" as "-name", a bare "-name" for booleans, and parsing stops at the first
// argument that is not a flag ("-" alone and everything after "--" are arguments).
#ifndef BULWARK_SERVER_CLI_FLAGS_H_
#define BULWARK_SERVER_CLI_FLAGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bulwark::cli {

// Parses a duration as Vault's CLI flags take it: whole seconds ("90") or a Go duration ("1h30m",
// "1.5s"). nullopt when `text` is neither.
std::optional<absl::Duration> ParseCliDuration(absl::string_view text);

class FlagSet {
 public:
  // Each call registers "-name"; the target keeps its current value as the default and must
  // outlive Parse. REQUIRES: `name` is new to this set.
  void String(const std::string& name, std::string* target, std::string usage);
  void Bool(const std::string& name, bool* target, std::string usage);
  void Int(const std::string& name, int* target, std::string usage);
  void Duration(const std::string& name, absl::Duration* target, std::string usage);
  // Repeatable; each value is appended. With `split_commas`, "-args=a,b" appends "a" and "b".
  void List(const std::string& name, std::vector<std::string>* target, bool split_commas,
            std::string usage);

  // Sets the flags found at the front of `args` and returns the arguments after them.
  // InvalidArgument with Go's wording ("flag provided but not defined: -x", "flag needs an
  // argument: -x", "invalid value ..."). "-h", "-help" and "--help" set help_requested().
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  // Whether Parse set `name` (as opposed to leaving its default).
  bool WasSet(const std::string& name) const;
  // One block per flag, sorted by name: "  -name=<type>\n      usage\n".
  std::string Usage() const;

 private:
  enum class Kind { kString, kBool, kInt, kDuration, kList };
  struct Flag {
    Kind kind;
    void* target;
    bool split_commas = false;
    std::string usage;
  };
  void Add(const std::string& name, Kind kind, void* target, bool split_commas, std::string usage);
  absl::Status Set(const std::string& name, const Flag& flag, const std::string& value);

  std::map<std::string, Flag> flags_;
  std::vector<std::string> set_;
  bool help_requested_ = false;
};

}  // namespace bulwark::cli

#endif  // BULWARK_SERVER_CLI_FLAGS_H_
