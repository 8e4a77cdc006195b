// FailpointSource: a node's failpoint state as the Env carries it. The ground floor cannot know
// failpoints (they live in faultinject/, a floor above), so this is only a handle: the one
// implementation is faultinject::Registry, and faultinject's site checks
// (BW_FAILPOINT_STATUS_IN and friends, faultinject/failpoint.h) evaluate against it.
#ifndef BULWARK_BASE_ENV_FAILPOINT_SOURCE_H_
#define BULWARK_BASE_ENV_FAILPOINT_SOURCE_H_

namespace bulwark {

// Where a node's failpoint sites look up their configuration. Env::failpoints == nullptr means
// "the process's installed registry" (a real process is one node); the simulator gives each
// simulated node its own, so several nodes in one process can be configured apart.
class FailpointSource {
 public:
  virtual ~FailpointSource() = default;

 protected:
  FailpointSource() = default;
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_FAILPOINT_SOURCE_H_
