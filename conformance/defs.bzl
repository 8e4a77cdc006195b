"""plugin_conformance_test: certify a Vault-style plugin with bulwark's conformance suite.

In a plugin author's workspace (bulwark available as @bulwark):

    load("@bulwark//conformance:defs.bzl", "plugin_conformance_test")

    plugin_conformance_test(
        name = "my_plugin_conformance",
        plugin = ":my_plugin",              # the binary under test (launch mode)
        manifest = "conformance.json",      # what the plugin claims
    )

`bazel test -c opt :my_plugin_conformance` runs the suite; the JSON certification record, which
names the build configuration, lands in the test's undeclared outputs, and `bazel run -c opt
@bulwark//conformance:certify -- --compilation_mode=opt <target>` turns the records of that
configuration into a certificate bundle. See docs/conformance.md.
"""

def plugin_conformance_test(
        name,
        manifest,
        plugin = None,
        plugin_args = [],
        profiles = [],
        expected_failures = None,
        shard_count = None,
        attach = None,
        seed = None,
        wrapper = None,
        wrapper_args = [],
        size = "medium",
        tags = [],
        **kwargs):
    """Declares a test that runs the conformance suite against one plugin.

    Args:
      name: the test's name.
      manifest: label of the plugin's manifest (JSON; see docs/conformance.md).
      plugin: label of the plugin binary (launch mode: the suite plays the host).
      plugin_args: arguments passed to the plugin on every launch.
      profiles: run only these profiles (default: every profile the manifest makes required
        or claims). A certificate needs all of them, so split profiles only for speed.
      expected_failures: label of an expected-failures file (development mode): exactly the
        listed tests must fail; a listed test that passes fails the run.
      shard_count: Bazel shards; the suite's tests are split among them.
      attach: instead of `plugin`, a dict {"handshake": LINE, "client_cert": LABEL,
        "client_key": LABEL} for a plugin another host already started. Attach runs are for
        debugging: tests that must launch the plugin skip, so they never certify. Tagged
        "external" (never cached).
      seed: a fixed seed (default: Bazel's TEST_RANDOM_SEED if set, else random and printed).
      wrapper: label of an executable the suite runs under, as `wrapper ARGS... suite FLAGS...`:
        it prepares what the plugin needs (e.g. starts a database and exports its address for
        the manifest's {{env:NAME}} references), runs the rest of its command line, cleans up
        and exits with the suite's status. See //examples/postgres/testing:postgres_server.sh.
      wrapper_args: the wrapper's ARGS (before the suite's command line).
      size: Bazel test size.
      tags: extra tags.
      **kwargs: passed to the underlying sh_test (e.g. timeout, flaky is refused).
    """
    if (plugin == None) == (attach == None):
        fail("plugin_conformance_test %s: give exactly one of plugin and attach" % name)
    if kwargs.get("flaky"):
        fail("plugin_conformance_test %s: conformance tests are never retried (flaky)" % name)
    suite = Label("//conformance:suite")
    args = [
        "$(rootpath %s)" % suite,
        "--manifest=$(rootpath %s)" % manifest,
        # The record names the build configuration, so certify can tell an optimised build's
        # records from a debug build's (docs/conformance.md, "Certify").
        "--compilation_mode=$(COMPILATION_MODE)",
        "--target_cpu=$(TARGET_CPU)",
    ]
    data = [suite, manifest]
    if plugin != None:
        args.append("--plugin=$(rootpath %s)" % plugin)
        data.append(plugin)
        args += ["--plugin_arg=%s" % a for a in plugin_args]
    else:
        args.append("--attach_handshake=%s" % attach["handshake"])
        for key in ["client_cert", "client_key"]:
            if key in attach:
                args.append("--attach_%s=$(rootpath %s)" % (key, attach[key]))
                data.append(attach[key])
        tags = tags + ["external"]
    if profiles:
        args.append("--profiles=" + ",".join(profiles))
    if expected_failures != None:
        args.append("--expected_failures=$(rootpath %s)" % expected_failures)
        data.append(expected_failures)
    if seed != None:
        args.append("--seed=%d" % seed)
    if wrapper != None:
        args = ["$(rootpath %s)" % wrapper] + wrapper_args + args
        data.append(wrapper)
    native.sh_test(
        name = name,
        srcs = [Label("//conformance:run_suite.sh")],
        args = args,
        data = data,
        size = size,
        shard_count = shard_count,
        tags = tags + ["conformance"],
        **kwargs
    )

def plugin_chaos_test(
        name,
        plugin,
        manifest,
        plugin_args = [],
        seeds = "1..3",
        steps = 12,
        expect_violation = None,
        size = "medium",
        tags = [],
        **kwargs):
    """Declares a chaos run on real processes against one plugin (any language).

    The host (bulwark's conformance harness) launches `plugin` as Vault does, mounts it on host
    storage that outlives the process, and for each seed runs a schedule of probe traffic
    (the manifest's backend probe) and faults: crash (SIGKILL, also during a write), hang
    (SIGSTOP, then SIGCONT), slowness (SIGSTOP/SIGCONT bursts), reload (Cleanup, Shutdown,
    relaunch). It checks that the plugin is relaunched and mounted after every fault, that
    every read answers what the probe contract allows after the writes acknowledged so far,
    and that the client token sent with every request never shows in the plugin's output.
    NOT deterministic: the seed fixes the schedule, not the timing. See docs/conformance.md,
    "Chaos runs on real processes".

        load("@bulwark//conformance:defs.bzl", "plugin_chaos_test")

        plugin_chaos_test(
            name = "my_plugin_chaos",
            plugin = ":my_plugin",
            manifest = "conformance.json",
        )

    Args:
      name: the test's name.
      plugin: label of the plugin binary.
      manifest: label of its conformance manifest (a secret or auth plugin's backend probe).
      plugin_args: arguments passed to the plugin on every launch.
      seeds: the seeds, as "N", "N..M" or "1,4,7..9".
      steps: random steps per seed (a write, a reload and a read always end the schedule).
      expect_violation: a check ("restart", "request", "read" or "secret"): the test passes only when some
        seed violates it (for fixtures that show a check failing).
      size: Bazel test size.
      tags: extra tags.
      **kwargs: passed to the underlying sh_test (flaky is refused).
    """
    if kwargs.get("flaky"):
        fail("plugin_chaos_test %s: chaos runs are never retried (flaky)" % name)
    chaos = Label("//conformance:chaos")
    args = [
        "$(rootpath %s)" % chaos,
        "--plugin=$(rootpath %s)" % plugin,
        "--manifest=$(rootpath %s)" % manifest,
        "--seeds=%s" % seeds,
        "--steps=%d" % steps,
    ] + ["--plugin_arg=%s" % a for a in plugin_args]
    if expect_violation != None:
        args.append("--expect_violation=%s" % expect_violation)
    native.sh_test(
        name = name,
        srcs = [Label("//conformance:run_suite.sh")],
        args = args,
        data = [chaos, plugin, manifest],
        size = size,
        tags = tags + ["chaos"],
        **kwargs
    )
