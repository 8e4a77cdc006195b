"""plugin_benchmark: benchmark a Vault-style plugin, with plots and a baseline comparison.

In a plugin author's workspace (bulwark available as @bulwark), next to plugin_conformance_test:

    load("@bulwark//conformance/benchmark:defs.bzl", "plugin_benchmark")

    plugin_benchmark(
        name = "my_plugin_benchmark",
        plugin = ":my_plugin",              # the binary to measure
        manifest = "conformance.json",      # its conformance manifest (the probe, the database)
        baseline = "goplugin",              # optional: see below
    )

`bazel run -c opt :my_plugin_benchmark` measures the plugin, playing the host as Vault does
(bulwark's conformance harness: launch, AutoMTLS, broker, host storage), and writes
benchmark-my_plugin_benchmark/ (record.json, report.md, PNG plots) in the directory it was run
from. Flags after `--`: --workloads=startup,memory,probe,storage,mux,database, --quick,
--rounds=N, --calls=N (at most, per series), --min_calls=N, --median_ci=PCT, --out=DIR,
--baseline=RECORD.json, --fail-on-regression=PCT, --min-effect=PCT, --no-plots. The macro also
declares `<name>_quick_test` (quick mode: one round, few calls, one size) that checks the
record, the report and the plots are produced.
See docs/benchmarking.md.
"""

# The reference go-plugin v1.0.1 plugin (examples/goplugin) and its manifest.
_GOPLUGIN = "//conformance/benchmark:goplugin_reference"
_GOPLUGIN_MANIFEST = "//conformance/benchmark:goplugin_reference_manifest"

def plugin_benchmark(
        name,
        plugin,
        manifest,
        baseline = None,
        baseline_manifest = None,
        plugin_args = [],
        baseline_args = [],
        workloads = [],
        rounds = None,
        fail_on_regression = None,
        wrapper = None,
        wrapper_args = [],
        quick_test = True,
        tags = [],
        **kwargs):
    """Declares `name` (bazel run it) and `name_quick_test` (a quick run under bazel test).

    Args:
      name: the target's name.
      plugin: label of the plugin binary.
      manifest: label of its conformance manifest (docs/conformance.md).
      baseline: what to compare against: a label ending in ".json" (a stored benchmark record,
        e.g. an earlier run's record.json), the label of another plugin binary (measured in the
        same run, rounds interleaved), or "goplugin" (the reference go-plugin v1.0.1 plugin,
        measured in the same run). None: no comparison.
      baseline_manifest: the baseline plugin's manifest (default: `manifest`; for "goplugin",
        its own).
      plugin_args: arguments for every launch of the plugin.
      baseline_args: arguments for every launch of the baseline plugin.
      workloads: measure only these (startup, memory, probe, storage, mux, database).
      rounds: rounds (fresh plugin and runner processes each; default 5).
      fail_on_regression: a percentage: exit non-zero when a metric is slower (or larger) than
        the baseline by more than this, at the 95% confidence level.
      wrapper: label of an executable the runner runs under (`wrapper ARGS... runner FLAGS...`),
        e.g. one that starts the database a database plugin's manifest names.
      wrapper_args: the wrapper's ARGS.
      quick_test: also declare `<name>_quick_test`.
      tags: extra tags.
      **kwargs: passed to both targets.
    """
    runner = Label("//conformance/benchmark:runner")
    report_py = Label("//conformance/benchmark:report.py")
    benchlib_py = Label("//conformance/benchmark:benchlib.py")
    args = [
        "$(rootpath %s)" % runner,
        "$(rootpath %s)" % report_py,
        "--name=%s" % name,
        "--plugin=$(rootpath %s)" % plugin,
        "--manifest=$(rootpath %s)" % manifest,
        "--compilation_mode=$(COMPILATION_MODE)",
        "--target_cpu=$(TARGET_CPU)",
    ] + ["--plugin_arg=%s" % a for a in plugin_args]
    data = [runner, report_py, benchlib_py, plugin, manifest]
    if baseline != None:
        if baseline == "goplugin":
            baseline = Label(_GOPLUGIN)
            if baseline_manifest == None:
                baseline_manifest = Label(_GOPLUGIN_MANIFEST)
        if type(baseline) == "string" and baseline.endswith(".json"):
            args.append("--baseline_record=$(rootpath %s)" % baseline)
            data.append(baseline)
        else:
            args.append("--baseline_plugin=$(rootpath %s)" % baseline)
            args += ["--baseline_arg=%s" % a for a in baseline_args]
            data.append(baseline)
            if baseline_manifest != None:
                args.append("--baseline_manifest=$(rootpath %s)" % baseline_manifest)
                data.append(baseline_manifest)
    if workloads:
        args.append("--workloads=" + ",".join(workloads))
    if rounds != None:
        args.append("--rounds=%d" % rounds)
    if wrapper != None:
        args.append("--wrapper=$(rootpath %s)" % wrapper)
        args += ["--wrapper_arg=%s" % a for a in wrapper_args]
        data.append(wrapper)
    native.sh_binary(
        name = name,
        srcs = [Label("//conformance/benchmark:run_benchmark.sh")],
        args = args + (["--fail-on-regression=%s" % fail_on_regression] if fail_on_regression != None else []),
        data = data,
        testonly = True,
        tags = tags + ["benchmark"],
        **kwargs
    )
    if quick_test:
        # A smoke run: it proves the benchmark still runs and draws its plots. Nothing is timed
        # against a limit, so a busy machine cannot fail it.
        native.sh_test(
            name = name + "_quick_test",
            srcs = [Label("//conformance/benchmark:run_benchmark.sh")],
            args = args + ["--quick", "--check_outputs"],
            data = data,
            size = "medium",
            tags = tags + ["benchmark"],
            **kwargs
        )
