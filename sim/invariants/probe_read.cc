// probe_read: with a plugin under test, every read of a mount's probe path answers what the
// probe contract allows given the writes before it (CheckProbeRead). plugin_check: the plugin
// author's own check of each such read (PluginUnderTest::check), when given. Both judge only
// client reads that succeeded: a failed read says nothing about the data.
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/plugin_under_test.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class ProbeReadInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "probe_read"; }
  absl::string_view rule() const override {
    return "a plugin under test answers every read of its probe path as its manifest's probe "
           "says, given the writes before it";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    const PluginUnderTest* plugin = world.config.plugin.get();
    if (plugin == nullptr || reply.source != Source::kClient ||
        reply.request.kind != OpKind::kGet || !reply.answered || !reply.response.status.ok()) {
      return;
    }
    nlohmann::json data;  // Null: nothing found.
    if (reply.response.value.has_value()) {
      data = nlohmann::json::parse(*reply.response.value, nullptr, /*allow_exceptions=*/false);
      if (data.is_discarded()) data = nlohmann::json("(not JSON)");
    }
    const ProbeRead read =
        world.probe_history.Read(reply.request.key, std::move(data), reply.sent, reply.at);
    world.Count(name());
    if (std::string wrong = CheckProbeRead(plugin->probe, read); !wrong.empty()) {
      world.Violate(name(), std::move(wrong));
      return;
    }
    if (!plugin->check) return;
    world.Count("plugin_check");
    if (std::string wrong = plugin->check(read); !wrong.empty()) {
      world.Violate("plugin_check",
                    absl::StrCat("read of \"", read.path, "\" (", read.writes_surely_before,
                                 " write(s) surely and ", read.writes_possibly_before,
                                 " possibly before it): ", wrong));
    }
  }
};

// Checked with probe_read (above); registered so that reports and shrinking know the name.
class PluginCheckInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "plugin_check"; }
  absl::string_view rule() const override {
    return "the plugin author's check accepts every read of the probe path";
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeProbeReadInvariant() {
  return std::make_unique<ProbeReadInvariant>();
}
std::unique_ptr<Invariant> MakePluginCheckInvariant() {
  return std::make_unique<PluginCheckInvariant>();
}

}  // namespace bulwark::sim
