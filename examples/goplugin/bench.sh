#!/usr/bin/env bash
# `bazel run //examples/goplugin:bench [-- host flags]`: go-plugin v1.0.1 host -> Go plugin
# benchmark, JSON on stdout. Extra arguments go to the host (e.g. -automtls=false).
set -euo pipefail
host="$1"
plugin="$2"
shift 2
# Resolve runfiles-relative paths before any cd; sockets in a short private dir.
host=$(readlink -f "$host")
plugin=$(readlink -f "$plugin")
sockdir=$(mktemp -d /tmp/bwgp.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT
TMPDIR="$sockdir" "$host" -plugin "$plugin" -bench "$@"
