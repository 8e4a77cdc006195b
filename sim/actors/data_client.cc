// A data client (see data_client.h).
#include "sim/actors/data_client.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {

DataClient::DataClient(World& world, int client)
    : world_(world),
      client_(client),
      random_(world.root_random.Derive(absl::StrCat("client/", client))) {}

std::string DataClient::Key(const World& world, int client, int index, bool raw) {
  if (raw) return absl::StrCat("raw/c", client, "/k", index);
  return absl::StrCat("m", client % world.scenario.mounts, "/c", client, "/k", index);
}

std::string DataClient::Folder(const World& world, int client, bool raw) {
  if (raw) return absl::StrCat("raw/c", client, "/");
  return absl::StrCat("m", client % world.scenario.mounts, "/c", client, "/");
}

void DataClient::Loop() {
  if (world_.quiet) return;
  const absl::Duration think =
      DrawMillis(random_, absl::ZeroDuration(), 2 * world_.scenario.think_mean);
  world_.loop.PostAfter(think, [this] { Op(); });
}

void DataClient::Op() {
  if (world_.quiet) return;
  Random& random = random_;
  if (world_.config.plant_nondeterminism_for_test && client_ == 1) {
    static std::atomic<uint64_t> planted{0};
    world_.trace.Add(world_.Now(), -1, "planted", absl::StrCat(planted.fetch_add(1)));
  }
  const Scenario& s = world_.scenario;
  const uint64_t total =
      static_cast<uint64_t>(s.put_weight + s.get_weight + s.list_weight + s.delete_weight);
  // Everything the operation might need is drawn up front, whatever it turns out to be, so the
  // stream advances the same way on every path.
  const uint64_t pick = random.Uniform(std::max<uint64_t>(total, 1));
  const bool raw = random.Uniform(100) < static_cast<uint64_t>(s.raw_percent);
  const int own_key = static_cast<int>(random.Uniform(static_cast<uint64_t>(s.keys_per_client)));
  const int other_client = static_cast<int>(random.UniformInRange(1, s.clients));
  const int other_key = static_cast<int>(random.Uniform(static_cast<uint64_t>(s.keys_per_client)));
  const std::string secret = DrawSecret(random);  // Remembered as a secret only if written.

  OpKind kind;
  if (pick < static_cast<uint64_t>(s.put_weight)) {
    kind = raw ? OpKind::kRawPut : OpKind::kPut;
  } else if (pick < static_cast<uint64_t>(s.put_weight + s.get_weight)) {
    kind = raw ? OpKind::kRawGet : OpKind::kGet;
  } else if (pick < static_cast<uint64_t>(s.put_weight + s.get_weight + s.list_weight)) {
    kind = raw ? OpKind::kRawList : OpKind::kList;
  } else {
    kind = raw ? OpKind::kRawDelete : OpKind::kDelete;
  }
  Request request;
  request.kind = kind;
  Network::SendOptions options;
  options.client = true;
  if (world_.config.plugin && !raw) {
    return ProbeRequest(kind, other_client, std::move(request), options);
  }
  if (kind == OpKind::kPut || kind == OpKind::kDelete || kind == OpKind::kRawPut ||
      kind == OpKind::kRawDelete) {
    const std::string key = Key(world_, client_, own_key, raw);
    request.key = key;
    KvModel::Value value;
    if (kind == OpKind::kPut || kind == OpKind::kRawPut) {
      world_.scanner.Add(secret);
      request.value = secret;
      value = secret;
    }
    // The history learns of the write before it is sent.
    const uint64_t sent = world_.PeekSeq();
    const uint64_t version = world_.data_history.BeginWrite(key, value, sent);
    world_.network->Send(
        0, request,
        [this, request, key, version, sent](const Response& response, bool answered) {
          const uint64_t at = world_.NextSeq();
          world_.data_history.EndWrite(key, version, WriteOutcome(answered, response.status), at);
          Finished(request, response, answered, sent, at);
        },
        options);
    return;
  }
  if (kind == OpKind::kGet || kind == OpKind::kRawGet) {
    request.key = Key(world_, other_client, other_key, raw);
  } else {
    request.key = Folder(world_, other_client, raw);
  }
  SendRead(std::move(request), options);
}

void DataClient::SendRead(Request request, Network::SendOptions options) {
  const uint64_t sent = world_.PeekSeq();
  world_.reads_in_flight.insert(sent);
  world_.network->Send(
      0, request,
      [this, request, sent](const Response& response, bool answered) {
        const uint64_t at = world_.NextSeq();
        world_.reads_in_flight.erase(world_.reads_in_flight.find(sent));
        Finished(request, response, answered, sent, at);
      },
      options);
}

void DataClient::Finished(const Request& request, const Response& response, bool answered,
                          uint64_t sent, uint64_t at) {
  world_.invariants->OnReply(Reply{Source::kClient, 0, request, response, answered, sent, at});
  world_.WorkloadOpFinished();
  Loop();
}

void DataClient::ProbeRequest(OpKind kind, int read_client, Request request,
                              Network::SendOptions options) {
  // Through the probe contract: the mount's probe path; a list becomes a read, and so does a
  // delete when the probe has none.
  const PluginUnderTest& plugin = *world_.config.plugin;
  const std::string path = ProbePath(world_, client_);
  if (kind == OpKind::kList || (kind == OpKind::kDelete && !plugin.probe.deletable)) {
    kind = OpKind::kGet;
  }
  request.kind = kind;
  request.key = path;
  if (kind == OpKind::kGet) {
    // Reads go to any client's mount, as kv reads do.
    request.key = ProbePath(world_, read_client);
    return SendRead(std::move(request), options);
  }
  const uint64_t sent = world_.PeekSeq();
  const ProbeOp::Kind op_kind =
      kind == OpKind::kPut ? ProbeOp::Kind::kWrite : ProbeOp::Kind::kDelete;
  if (kind == OpKind::kPut) {
    request.operation = world_.probe_history.MayExist(path) ? "update" : "create";
    request.data_json = plugin.probe.write_data_json;
  }
  const size_t index = world_.probe_history.Begin(path, op_kind, sent);
  world_.network->Send(
      0, request,
      [this, request, path, index, sent](const Response& response, bool answered) {
        const uint64_t at = world_.NextSeq();
        world_.probe_history.End(path, index, WriteOutcome(answered, response.status), at);
        Finished(request, response, answered, sent, at);
      },
      options);
}

std::string DataClient::ProbePath(const World& world, int client) {
  return absl::StrCat("m", client % world.scenario.mounts, "/",
                      world.config.plugin->probe.write_path);
}

}  // namespace bulwark::sim
