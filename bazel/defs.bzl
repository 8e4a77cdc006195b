"""bulwark's C++ rule wrappers: warnings, test sizes and tags are set here, in one place.

Warnings (-Wall -Wextra -Werror) and the C++ standard come from .bazelrc so that they reach
every compile, including code generated from our protos.

Plugin authors load these from their own workspace (`load("@bulwark//bazel:defs.bzl",
"bw_cc_test")`), so every label a macro adds is a Label() of this file's repository: a plain
"//third_party:gtest" would name the author's workspace, where it does not exist.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def bw_cc_library(name, **kwargs):
    cc_library(name = name, **kwargs)

def bw_cc_binary(name, **kwargs):
    cc_binary(name = name, **kwargs)

def bw_cc_test(name, size = "small", deps = [], data = [], main = True, **kwargs):
    """A GoogleTest test. `main = False` when the test brings its own main()."""
    extra = [Label("//third_party:gtest_main")] if main else []
    cc_test(
        name = name,
        size = size,
        deps = deps + [Label("//third_party:gtest")] + extra,
        # Read by --config=tsan (TSAN_OPTIONS in .bazelrc), relative to the runfiles root.
        data = data + [Label("//bazel:tsan_suppressions.txt")],
        **kwargs
    )

def bw_cc_benchmark(name, deps = [], tags = [], **kwargs):
    """A Google Benchmark binary. Manual: run with `bazel run -c opt //benchmarks:<name>`.

    Its main (//benchmarks/measure:benchmark_record_main) also takes --record=FILE: the results
    as a table record for docs/performance.md (conformance/benchmark/perf_tables.py).
    """
    cc_binary(
        name = name,
        testonly = True,
        deps = deps + [Label("//benchmarks/measure:benchmark_record_main")],
        tags = tags + ["manual", "benchmark"],
        **kwargs
    )

PLANTED_BUGS_SUFFIX = "_planted_bugs"

def planted_bugs_variant(label):
    """The testonly planted-bug variant of a library built with bw_planted_bugs_cc_library.

    "//core/catalog" -> "//core/catalog:catalog_planted_bugs"; ":dispatcher" ->
    ":dispatcher_planted_bugs".
    """
    if ":" in label:
        return label + PLANTED_BUGS_SUFFIX
    return "%s:%s%s" % (label, label.split("/")[-1], PLANTED_BUGS_SUFFIX)

def bw_planted_bugs_cc_library(name, srcs = [], deps = [], variant_deps = [], sites = True, **kwargs):
    """A library whose planted bugs (BW_PLANTED_BUG, faultinject/failpoint.h) never ship.

    Makes two cc_libraries from the same sources:
      `name`                what ships: compiled without BULWARK_PLANTED_BUGS, so its bug sites
                            are constant "off" and their names are not in the object code;
      `name_planted_bugs`   testonly, for the simulator's drill and the conformance fixtures:
                            the bug sites are failpoints a configuration can switch on.

    sites: whether these sources hold bug sites (False for a library that only links one that
        does, and so needs a variant for the drill to link one variant throughout).
    variant_deps: the deps that are themselves bw_planted_bugs_cc_library targets; the variant
        links their variants. A binary must never link both variants of a library (the same
        symbols twice): //faultinject:planted_bugs_odr_test checks the drill binaries.
    """
    cc_library(name = name, srcs = srcs, deps = deps + variant_deps, **kwargs)
    cc_library(
        name = name + PLANTED_BUGS_SUFFIX,
        testonly = True,
        srcs = srcs,
        deps = deps + [planted_bugs_variant(d) for d in variant_deps],
        local_defines = ["BULWARK_PLANTED_BUGS"] if sites else [],
        **kwargs
    )
