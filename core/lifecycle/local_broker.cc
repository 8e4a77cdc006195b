// LocalBroker: broker ids mapped to HostServices, called synchronously.
#include "core/lifecycle/local_broker.h"

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bulwark::lifecycle {

struct LocalBroker::State {
  bool closed = false;
  uint32_t next_id = 1;
  std::map<uint32_t, HostServices*> offers;
};

class LocalBroker::Dialer final : public protocol::HostDialer {
 public:
  explicit Dialer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  absl::StatusOr<std::shared_ptr<protocol::HostConnection>> Dial(uint32_t broker_id) override {
    if (state_->closed || state_->offers.count(broker_id) == 0) {
      return absl::UnavailableError(absl::StrCat("broker id ", broker_id, " is not offered"));
    }
    return std::shared_ptr<protocol::HostConnection>(new Link(state_, broker_id));
  }

 private:
  // One plugin-side connection to a broker id; it looks the offer up on every call, so a
  // withdrawn offer is never reached.
  class Link final : public protocol::HostConnection {
   public:
    Link(std::shared_ptr<State> state, uint32_t id) : state_(std::move(state)), id_(id) {}
    absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view request) override {
      auto it = state_->offers.find(id_);
      if (state_->closed || it == state_->offers.end()) {
        return absl::UnavailableError("the host withdrew this broker connection");
      }
      return it->second->Handle(method, request);
    }

   private:
    std::shared_ptr<State> state_;
    uint32_t id_;
  };

  std::shared_ptr<State> state_;
};

LocalBroker::LocalBroker()
    : state_(std::make_shared<State>()), dialer_(std::make_unique<Dialer>(state_)) {}

LocalBroker::~LocalBroker() { Close(); }

absl::StatusOr<uint32_t> LocalBroker::Offer(HostServices* services) {
  if (state_->closed) return absl::FailedPreconditionError("the broker is closed");
  const uint32_t id = state_->next_id++;
  state_->offers[id] = services;
  return id;
}

void LocalBroker::Withdraw(uint32_t id) { state_->offers.erase(id); }

void LocalBroker::Close() {
  state_->closed = true;
  state_->offers.clear();
}

bool LocalBroker::closed() const { return state_->closed; }

protocol::HostDialer& LocalBroker::dialer() { return *dialer_; }

}  // namespace bulwark::lifecycle
