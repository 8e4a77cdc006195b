// The broker for plugins that run on the host's own event loop (built-in plugins and the
// simulator's plugin processes): the host offers HostServices under a broker id, and the
// plugin's protocol::HostDialer reaches them with synchronous calls, as a real plugin reaches them
// over the go-plugin broker.
#ifndef BULWARK_CORE_LIFECYCLE_LOCAL_BROKER_H_
#define BULWARK_CORE_LIFECYCLE_LOCAL_BROKER_H_

#include <cstdint>
#include <memory>

#include "base/env/plugin_transport.h"
#include "protocol/host_connection.h"

namespace bulwark::lifecycle {

// Single-threaded: every method, and every call through the dialer's connections, runs on the
// host's executor thread. Connections stay safe to use after Withdraw, Close or the broker's
// destruction: their calls then fail with kUnavailable.
class LocalBroker {
 public:
  LocalBroker();
  ~LocalBroker();
  LocalBroker(const LocalBroker&) = delete;
  LocalBroker& operator=(const LocalBroker&) = delete;

  // Offers `services` (which must stay valid until withdrawn) under a new id; ids count up from
  // 1 and are never reused, like go-plugin's. Errors: kFailedPrecondition after Close.
  absl::StatusOr<uint32_t> Offer(HostServices* services);
  // Takes an offer back; unknown ids are ignored.
  void Withdraw(uint32_t id);
  // Withdraws every offer and refuses new ones.
  void Close();
  bool closed() const;

  // What the plugin side dials: Dial(id) fails with kUnavailable for an id not offered.
  protocol::HostDialer& dialer();

 private:
  struct State;
  class Dialer;
  std::shared_ptr<State> state_;
  std::unique_ptr<Dialer> dialer_;
};

}  // namespace bulwark::lifecycle

#endif  // BULWARK_CORE_LIFECYCLE_LOCAL_BROKER_H_
