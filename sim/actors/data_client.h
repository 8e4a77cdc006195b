// A data client c (1..clients): writes only its own keys — under its mount, or raw through the
// barrier — and reads and lists anyone's, one operation at a time, each drawn from its own random
// stream. It tells the history what it wrote and hands every answer to the invariants.
#ifndef BULWARK_SIM_ACTORS_DATA_CLIENT_H_
#define BULWARK_SIM_ACTORS_DATA_CLIENT_H_

#include <string>

#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/network.h"
#include "sim/node.h"

namespace bulwark::sim {

class DataClient final : public Actor {
 public:
  DataClient(World& world, int client);

  absl::string_view name() const override { return "data-client"; }
  void OnReady() override { Loop(); }

  // Client c's key j, and its folder, under its mount or raw.
  static std::string Key(const World& world, int client, int index, bool raw);
  static std::string Folder(const World& world, int client, bool raw);
  // With a plugin under test: the probe path of client c's mount ("m<i>/<write_path>").
  static std::string ProbePath(const World& world, int client);

 private:
  void Loop();
  void Op();
  // Op with a plugin under test, for a mount: the probe's write, read or delete (a list, and a
  // delete the probe does not have, become reads; reads go to `read_client`'s mount).
  void ProbeRequest(OpKind kind, int read_client, Request request, Network::SendOptions options);
  // Sends a read (or list): in flight until answered, then Finished.
  void SendRead(Request request, Network::SendOptions options);
  // A request ended: the invariants judge it, and the next operation follows.
  void Finished(const Request& request, const Response& response, bool answered, uint64_t sent,
                uint64_t at);

  World& world_;
  const int client_;
  SeededRandom random_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_DATA_CLIENT_H_
