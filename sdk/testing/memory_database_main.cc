// A minimal database plugin for ServeDatabase's process-level test: users live in a map.
// Initialize with verify_connection fails when the config says {"reachable": false}.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/database.h"
#include "sdk/serve.h"

namespace {

using namespace bulwark::sdk;  // NOLINT: a test binary.

class MemoryDatabase final : public Database {
 public:
  absl::StatusOr<InitializeResponse> Initialize(const InitializeRequest& request) override {
    if (request.verify_connection && !request.config.value("reachable", true)) {
      return absl::UnavailableError("the database is not reachable");
    }
    initialized_ = true;
    return InitializeResponse{request.config};
  }
  absl::StatusOr<NewUserResponse> NewUser(const NewUserRequest& request) override {
    if (!initialized_) return absl::FailedPreconditionError("not initialized");
    std::string name = absl::StrCat("v-", request.username_config.role_name, "-", ++serial_);
    users_[name] = request.password;
    return NewUserResponse{name};
  }
  absl::Status UpdateUser(const UpdateUserRequest& request) override {
    auto it = users_.find(request.username);
    if (it == users_.end()) return absl::NotFoundError("no such user");
    if (request.password.has_value()) it->second = request.password->new_password;
    return absl::OkStatus();
  }
  absl::Status DeleteUser(const DeleteUserRequest& request) override {
    users_.erase(request.username);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Type() override { return std::string("memdb"); }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  bool initialized_ = false;
  int serial_ = 0;
  std::map<std::string, std::string> users_;
};

}  // namespace

int main() {
  ServeOptions options = DatabaseServeOptions();
  options.plugin_name = "memdb";
  options.plugin_version = "v0.0.1";
  return ServeDatabase(
      [](const DatabaseContext&) -> absl::StatusOr<std::unique_ptr<Database>> {
        return std::make_unique<MemoryDatabase>();
      },
      std::move(options));
}
