// LeaseWindow: until when the lock holder's lease is confirmed alive by its own clock (the send
// time of the last renewal etcd acknowledged plus ha::LossDeadline). The coordinator's campaign
// thread opens and extends it; EtcdStorage serves cached reads only while it is open. Thread-safe.
#ifndef BULWARK_SERVER_ETCD_LEASE_WINDOW_H_
#define BULWARK_SERVER_ETCD_LEASE_WINDOW_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace bulwark::etcd {

class LeaseWindow {
 public:
  using Time = std::chrono::steady_clock::time_point;

  void ExtendTo(Time until) { until_ns_.store(until.time_since_epoch().count()); }
  void Close() { until_ns_.store(0); }
  bool Open() const {
    return std::chrono::steady_clock::now().time_since_epoch().count() < until_ns_.load();
  }

 private:
  std::atomic<int64_t> until_ns_{0};
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_LEASE_WINDOW_H_
