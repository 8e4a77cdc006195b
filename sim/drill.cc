// The planted-bug drill (see drill.h).
#include "sim/drill.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sim/scenario.h"

namespace bulwark::sim {

const std::vector<PlantedBug>& PlantedBugs() {
  static const std::vector<PlantedBug>* const bugs = new std::vector<PlantedBug>{
      {"storage.ack_before_sync",
       "FileStorage acknowledges a Put only once the record and its directory entry are durable",
       "bug.storage.file.ack_before_sync=return",
       "crash",
       // A lost record shows as a stale read; a lost keyring or root key as a node that cannot
       // be unsealed or read afterwards.
       {"durability", "phantom_read", "liveness", "recovery"}},
      // Under "swap" every registration is honest, so only a launch of a swapped artifact can
      // show the bug: the drill proves launch verification is checked, not only registration.
      {"catalog.skip_hash_check",
       "the catalog refuses to launch (or register) an artifact whose SHA-256 differs",
       "bug.catalog.skip_hash_check=return",
       "swap",
       {"launch_hash"}},
      {"barrier.serve_while_sealed",
       "a sealed barrier serves nothing",
       "bug.barrier.serve_while_sealed=return",
       "seal",
       {"sealed_read"}},
      // Planted in the lifecycle manager (core/lifecycle).
      {"lifecycle.keep_plugin_after_seal",
       "a seal or step-down stops every plugin process",
       "bug.lifecycle.keep_plugin_after_seal=return",
       "seal",
       {"stopped_plugins"}},
      {"lifecycle.skip_retry_after_reload",
       "a request whose plugin died under it is retried once after the lazy reload",
       "bug.lifecycle.skip_retry_after_reload=return",
       "plugins",
       {"reload"}},
      // Planted for the rule prober's steps (actors/rule_prober.h), one per new invariant.
      {"node.admit_while_sealed",
       "a sealed node refuses every admin request (mount, unmount, reload, register)",
       "bug.node.admit_while_sealed=return",
       "default",
       {"sealed_admin", "sealed_read"}},
      {"barrier.count_duplicate_share",
       "an unseal share given twice counts once: below the threshold the node stays sealed",
       "bug.barrier.count_duplicate_share=return",
       "default",
       {"unseal_threshold"}},
      {"mount.allow_nested",
       "a mount nested with another (\"n/\" beside \"n/b/\") is refused",
       "bug.mount.allow_nested=return",
       "default",
       {"mount_isolation"}},
      {"node.shared_host_storage_prefix",
       "each mount's host storage is confined to its own prefix",
       "bug.node.shared_host_storage_prefix=return",
       "default",
       {"mount_isolation", "phantom_read", "durability"}},
      {"lifecycle.no_restart_backoff",
       "a plugin that keeps failing to start is restarted only after a growing backoff",
       "bug.lifecycle.no_restart_backoff=return",
       "default",
       {"restart_backoff"}},
      // Planted for the rule prober's catalog and plugin steps (invariants/plugin_rules.cc).
      {"catalog.command_escapes_directory",
       "a command that resolves through a symlink to a file outside the plugin directory is "
       "refused at registration and at launch",
       "bug.catalog.command_escapes_directory=return",
       "default",
       {"plugin_confinement"}},
      {"catalog.allow_symlinked_directory",
       "a plugin directory that is a symlink is refused at registration and at launch",
       "bug.catalog.allow_symlinked_directory=return",
       "default",
       {"plugin_confinement"}},
      {"lifecycle.runner_key_ignores_env_args",
       "catalog entries that differ only in env or args never share a plugin process",
       "bug.lifecycle.runner_key_ignores_env_args=return",
       "default",
       {"runner_config"}},
      {"rpc.accept_malformed_handshake",
       "a plugin that prints a malformed handshake line is refused and its process stopped",
       "bug.rpc.accept_malformed_handshake=return",
       "default",
       {"bad_handshake"}},
      {"catalog.skip_name_version_validation",
       "invalid plugin names and versions (and the reserved +builtin metadata) are refused at "
       "registration, and nothing is stored",
       "bug.catalog.skip_name_version_validation=return",
       "default",
       {"catalog_validation"}},
      // Signed plugins (docs/security.md): the tamper fault removes the signer's line, and a
      // launch must then be refused.
      {"catalog.skip_signature_check",
       "under plugin_signature_policy \"required\" a plugin whose signature does not verify "
       "against the allowed signers at launch is not started",
       "bug.catalog.skip_signature_check=return",
       "tamper",
       {"signed_launch"}},
      // The HA cluster's (sim/ha, scenario "cluster": 3 nodes on the simulated etcd).
      {"sim_etcd.unfenced_write",
       "every write of the active node is conditioned on its lock entry still existing",
       "bug.sim_etcd.unfenced_write=return",
       "cluster",
       {"ha_one_writer"}},
      {"sim_etcd.ack_fenced_write",
       "a write refused by the fence is reported as failed, never acknowledged",
       "bug.sim_etcd.ack_fenced_write=return",
       "cluster",
       {"durability", "phantom_read", "liveness"}},
      {"ha.keep_plugins_after_step_down",
       "losing the lock or stepping down stops every plugin of the node",
       "bug.ha.keep_plugins_after_step_down=return",
       "cluster",
       // The node also stays active in its core (serving its in-memory catalog, which no longer
       // follows the store): durability may see that first.
       {"ha_plugins", "durability"}},
      {"ha.give_up_after_failed_campaign",
       "a node whose campaign failed contends again after retry_after",
       "bug.ha.give_up_after_failed_campaign=return",
       "cluster",
       {"ha_liveness", "liveness"}},
      // Forwarding and performance standbys on the cluster (sim/ha).
      {"sim_ha.redirect_after_forward",
       "a standby that forwarded a request answers with the active node's answer and never also "
       "sends the client there (which would apply it again)",
       "bug.sim_ha.redirect_after_forward=return",
       "cluster",
       {"ha_forwarded_once"}},
      {"sim_etcd.stale_standby_reads",
       "a performance standby reads every value from the store, never from an older copy",
       "bug.sim_etcd.stale_standby_reads=return",
       "cluster",
       {"ha_fresh_reads", "durability"}},
      {"sim_etcd.keep_cache_across_watch_break",
       "a break of a performance standby's watch stream empties its watched reads (a resume "
       "past a compaction must not answer values changed in the gap)",
       "bug.sim_etcd.keep_cache_across_watch_break=return",
       "cluster",
       {"ha_fresh_reads", "durability"}},
      // Keyring rotations on the cluster (sys/rotate on the active node).
      {"barrier.skip_keyring_reload",
       "a node reads the keyring again when another node rotated it (the watched change, an "
       "entry sealed under a newer term, becoming active, a rotation of its own)",
       "bug.barrier.skip_keyring_reload=return",
       "cluster",
       {"ha_keyring"}},
      // The database workload (sim/database): rotations that stop half way, leases, instances.
      {"database.rotate_without_wal",
       "a root rotation writes its WAL before UpdateUser, so a rotation that stops half way is "
       "rolled back and the stored root credential logs in again",
       "bug.database.rotate_without_wal=return",
       "default",
       {"root_recoverable"}},
      {"lease.drop_failed_revocation",
       "a revocation that fails (the database or its plugin is down) is retried, never dropped",
       "bug.lease.drop_failed_revocation=return",
       "default",
       {"no_leaked_users"}},
      {"lease.expire_early",
       "a lease ends at its TTL, not before: issued credentials work until then",
       "bug.lease.expire_early=return",
       "default",
       {"issued_credentials"}},
      {"database.keep_instance_on_rotation",
       "rotate-root always closes the plugin instance it used (a termination event)",
       "bug.database.keep_instance_on_rotation=return",
       "default",
       {"instance_closed"}},
      {"database.keep_instance_on_config_write",
       "a config write closes the instance it replaces (a termination event)",
       "bug.database.keep_instance_on_config_write=return",
       "default",
       {"instance_closed"}},
  };
  return *bugs;
}

absl::StatusOr<std::vector<PlantedBug>> PlantedBugsNamed(absl::string_view name) {
  if (name == "all") return PlantedBugs();
  std::vector<std::string> known;
  for (const PlantedBug& bug : PlantedBugs()) {
    if (bug.name == name) return std::vector<PlantedBug>{bug};
    known.push_back(bug.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown planted bug \"", name.substr(0, 64),
                                          "\"; known: all, ", absl::StrJoin(known, ", ")));
}

std::string BugSite(const PlantedBug& bug) {
  return bug.failpoints.substr(0, bug.failpoints.find('='));
}

DrillResult RunDrill(
    const PlantedBug& bug, uint64_t first_seed, uint64_t seeds_max, size_t shrink_runs_max,
    const std::function<void(uint64_t seed, const std::string& replay)>& seed_starting) {
  DrillResult result;
  result.bug = bug;
  result.options.scenario = bug.scenario;
  result.options.failpoints = bug.failpoints;
  for (uint64_t i = 0; i < seeds_max; ++i) {
    const uint64_t seed = first_seed + i;
    RunConfig config;
    config.seed = seed;
    config.scenario = *ScenarioFor(bug.scenario, seed);
    config.failpoints = bug.failpoints;
    if (seed_starting) seed_starting(seed, ReplayCommand(result.options, seed, nullptr));
    const RunResult run = RunSimulation(config);
    result.seeds_tried = i + 1;
    if (i == 0) {
      const std::string site = BugSite(bug);
      result.planted = std::any_of(
          run.failpoints.begin(), run.failpoints.end(),
          [&](const faultinject::SiteStats& s) { return s.name == site && s.hits > 0; });
      if (!result.planted) break;
    }
    if (run.passed()) continue;
    result.caught = true;
    result.seed = seed;
    result.violation = run.violations[0];
    result.schedule = run.schedule;
    result.shrunk = Shrink(config, run, shrink_runs_max);
    break;
  }
  result.options.first_seed = result.options.last_seed = result.seed;
  return result;
}

std::string FormatDrill(const std::vector<DrillResult>& results) {
  std::string out = "bulwark sim: planted-bug drill\n";
  std::vector<size_t> lengths;
  for (const DrillResult& r : results) {
    absl::StrAppend(&out, "  ", r.bug.name, " (", r.bug.failpoints, ", scenario ", r.bug.scenario,
                    ")\n    rule: ", r.bug.rule, "\n");
    if (!r.planted) {
      absl::StrAppend(&out, "    not planted: failpoint ", BugSite(r.bug),
                      " is never evaluated, so there is nothing to catch yet\n");
      continue;
    }
    if (!r.caught) {
      absl::StrAppend(&out, "    NOT CAUGHT in ", r.seeds_tried, " seeds\n");
      continue;
    }
    const bool expected = std::find(r.bug.invariants.begin(), r.bug.invariants.end(),
                                    r.violation.invariant) != r.bug.invariants.end();
    absl::StrAppend(&out, "    caught at seed ", r.seed, " (", r.seeds_tried,
                    r.seeds_tried == 1 ? " seed" : " seeds", " tried) by ", r.violation.invariant,
                    expected ? "" : " (not one of the expected invariants)", ": ",
                    r.violation.detail, "\n");
    if (r.shrunk.has_value() && r.shrunk->reproduced) {
      lengths.push_back(r.shrunk->schedule.size());
      absl::StrAppend(
          &out, "    shrunk to ", r.shrunk->schedule.size(), " of ", r.shrunk->original_events,
          " events in ", r.shrunk->runs, " runs", r.shrunk->verified ? ", verified" : "",
          "\n    replay: ", ReplayCommand(r.options, r.seed, &r.shrunk->schedule), "\n");
    } else {
      absl::StrAppend(&out, "    not shrunk (the recorded schedule did not reproduce)\n",
                      "    replay: ", ReplayCommand(r.options, r.seed, nullptr), "\n");
    }
  }
  std::sort(lengths.begin(), lengths.end());
  if (!lengths.empty()) {
    absl::StrAppend(&out, "  median shrunk schedule: ", lengths[lengths.size() / 2], " events\n");
  }
  return out;
}

}  // namespace bulwark::sim
