// WatchHealth: whether the coordinator's watches are delivering, for a performance standby's
// watched reads (docs/ha.md, "Reads on a performance standby"). A watch reader thread marks it
// broken the moment its stream ends or fails (events may then arrive late) and live again once a
// new stream is open; every break bumps the epoch, so that whatever a reader remembered before
// it is dropped. Thread-safe.
#ifndef BULWARK_SERVER_ETCD_WATCH_HEALTH_H_
#define BULWARK_SERVER_ETCD_WATCH_HEALTH_H_

#include <atomic>
#include <cstdint>

namespace bulwark::etcd {

class WatchHealth {
 public:
  void Opened() { live_.store(true); }
  void Broke() {
    live_.store(false);
    epoch_.fetch_add(1);
  }
  bool Live() const { return live_.load(); }
  uint64_t epoch() const { return epoch_.load(); }

 private:
  std::atomic<bool> live_{false};
  std::atomic<uint64_t> epoch_{0};
};

}  // namespace bulwark::etcd

#endif  // BULWARK_SERVER_ETCD_WATCH_HEALTH_H_
