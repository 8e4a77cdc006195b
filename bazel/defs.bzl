"""bulwark's C++ rule wrappers: warnings, test sizes and tags are set here, in one place.

Warnings (-Wall -Wextra -Werror) and the C++ standard come from .bazelrc so that they reach
every compile, including code generated from our protos.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def bw_cc_library(name, **kwargs):
    cc_library(name = name, **kwargs)

def bw_cc_binary(name, **kwargs):
    cc_binary(name = name, **kwargs)

def bw_cc_test(name, size = "small", deps = [], data = [], main = True, **kwargs):
    """A GoogleTest test. `main = False` when the test brings its own main()."""
    extra = ["//third_party:gtest_main"] if main else []
    cc_test(
        name = name,
        size = size,
        deps = deps + ["//third_party:gtest"] + extra,
        # Read by --config=tsan (TSAN_OPTIONS in .bazelrc), relative to the runfiles root.
        data = data + ["//bazel:tsan_suppressions.txt"],
        **kwargs
    )

def bw_cc_benchmark(name, deps = [], tags = [], **kwargs):
    """A Google Benchmark binary. Manual: run with `bazel run -c opt //benchmarks:<name>`."""
    cc_binary(
        name = name,
        testonly = True,
        deps = deps + ["//third_party:benchmark_main"],
        tags = tags + ["manual", "benchmark"],
        **kwargs
    )
