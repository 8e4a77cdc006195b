"""Go binaries and Go protobuf/gRPC code, built offline with Debian's toolchain (no rules_go).

Debian bookworm ships Go 1.19 and the Go sources bulwark's interop code needs (go-plugin v1.0.1,
grpc-go 1.33, golang/protobuf 1.3.5, x/net, hclog) as GOPATH trees under /usr/share/gocode. The
rules here stage our own packages into a private GOPATH inside the action, put Debian's tree
after it, and run `go build` with modules, the proxy and VCS stamping off, so nothing is
downloaded. Each action gets its own GOCACHE inside its working directory and deletes it after,
so the actions run in Bazel's default sandbox and need neither `local = True` nor a writable
home directory. The price is a cold compile of grpc-go in every Go binary action (about 25 s on
two cores); Bazel's action and disk caches make rebuilds happen only when inputs change.

    bw_go_proto_library  .proto files (one Go package) -> .pb.go (protoc + protoc-gen-go)
    bw_go_library        .go files of one importable package
    bw_go_binary         package main + deps -> one static executable (CGO_ENABLED=0); usable
                         with `bazel run` and as `data` of tests

Not tracked as inputs: the system `go`, `protoc`, `protoc-gen-go` and /usr/share/gocode. After a
Debian upgrade of those, rebuild with `bazel build --disk_cache= ...` or touch a source file.
"""

# Debian's GOPATH tree (golang-*-dev packages install their sources here).
SYSTEM_GOPATH = "/usr/share/gocode"

# protoc's copies of the well-known types name APIv2 packages (google.golang.org/protobuf/...),
# which Debian does not package for GOPATH builds; golang/protobuf 1.3.5 (APIv1) has its own.
_WELL_KNOWN_GO_PACKAGES = {
    "google/protobuf/any.proto": "github.com/golang/protobuf/ptypes/any",
    "google/protobuf/duration.proto": "github.com/golang/protobuf/ptypes/duration",
    "google/protobuf/empty.proto": "github.com/golang/protobuf/ptypes/empty",
    "google/protobuf/struct.proto": "github.com/golang/protobuf/ptypes/struct",
    "google/protobuf/timestamp.proto": "github.com/golang/protobuf/ptypes/timestamp",
    "google/protobuf/wrappers.proto": "github.com/golang/protobuf/ptypes/wrappers",
}

BwGoInfo = provider(
    doc = "One Go package and everything it needs to be staged into a GOPATH.",
    fields = {
        "importpath": "string: the package's Go import path",
        "packages": "list of struct(importpath, srcs): this package and its transitive deps",
        "proto_importpaths": "dict: .proto path relative to its workspace root -> Go import path (transitive)",
        "proto_srcs": "list of File: the .proto files behind proto_importpaths",
    },
)

def _merge_deps(deps):
    """Returns (packages, proto_importpaths, proto_srcs) of `deps`, each import path once."""
    packages = {}
    protos = {}
    proto_srcs = {}
    for dep in deps:
        info = dep[BwGoInfo]
        for pkg in info.packages:
            packages[pkg.importpath] = pkg
        protos.update(info.proto_importpaths)
        for f in info.proto_srcs:
            proto_srcs[f.path] = f
    return packages, protos, proto_srcs

def _check_importpath(ctx, importpath):
    if not importpath or importpath.startswith("/") or importpath.endswith("/") or ".." in importpath:
        fail("%s: importpath %r must be a relative Go import path" % (ctx.label, importpath))

def _bw_go_library_impl(ctx):
    _check_importpath(ctx, ctx.attr.importpath)
    packages, protos, proto_srcs = _merge_deps(ctx.attr.deps)
    if ctx.attr.importpath in packages:
        fail("%s: importpath %s is already provided by a dependency" % (ctx.label, ctx.attr.importpath))
    packages[ctx.attr.importpath] = struct(importpath = ctx.attr.importpath, srcs = ctx.files.srcs)
    return [
        DefaultInfo(files = depset(ctx.files.srcs)),
        BwGoInfo(
            importpath = ctx.attr.importpath,
            packages = packages.values(),
            proto_importpaths = protos,
            proto_srcs = proto_srcs.values(),
        ),
    ]

bw_go_library = rule(
    implementation = _bw_go_library_impl,
    doc = "The .go files of one importable Go package (no compile step of its own).",
    attrs = {
        "srcs": attr.label_list(allow_files = [".go"], mandatory = True),
        "importpath": attr.string(mandatory = True),
        "deps": attr.label_list(providers = [BwGoInfo]),
    },
)

# Runs protoc with protoc-gen-go into a scratch directory, then moves each declared .pb.go into
# place. $1 = protoc-gen-go parameters, $2 = output directory, $3 = the proto roots (execroot
# relative, ':'-separated: "." for the main workspace, "external/<name>" for another), $4... =
# .proto paths relative to their root.
_PROTOC_SCRIPT = """\
set -euo pipefail
params="$1"; out_dir="$2"; roots="$3"; shift 3
proto_paths=()
IFS=: read -r -a root_list <<< "$roots"
for root in "${root_list[@]}"; do proto_paths+=("--proto_path=$root"); done
gen=$(command -v protoc-gen-go || true)
if [ -z "$gen" ]; then
  echo "bw_go_proto_library: protoc-gen-go not found on PATH; install golang-goprotobuf-dev (tools/setup)" >&2
  exit 1
fi
scratch=$(mktemp -d "$PWD/_bw_goproto.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
protoc "${proto_paths[@]}" --plugin=protoc-gen-go="$gen" --go_out="$params:$scratch" "$@"
for src in "$@"; do
  base=$(basename "$src" .proto)
  mv "$scratch/${src%.proto}.pb.go" "$out_dir/$base.pb.go"
done
"""

def _proto_root(src):
    """The --proto_path of a source .proto file: "." or its external repository's root."""
    return src.owner.workspace_root or "."

def _proto_import_path(src):
    """How .proto files import `src`: its path relative to its workspace's root."""
    root = src.owner.workspace_root
    return src.path[len(root) + 1:] if root else src.path

def _bw_go_proto_library_impl(ctx):
    _check_importpath(ctx, ctx.attr.importpath)
    packages, protos, proto_srcs = _merge_deps(ctx.attr.deps)
    proto_paths = []
    for src in ctx.files.srcs:
        if not src.is_source:
            fail("%s: %s must be a source .proto file, not a generated one" % (ctx.label, src))
        proto_paths.append(_proto_import_path(src))
        protos[_proto_import_path(src)] = ctx.attr.importpath
        proto_srcs[src.path] = src

    # Imports are relative to the root of the workspace that holds the .proto file (this one,
    # or @bulwark's when an author's workspace builds bulwark's Go targets).
    roots = {_proto_root(f): True for f in proto_srcs.values()}

    outs = [
        ctx.actions.declare_file("%s/%s.pb.go" % (ctx.label.name, src.basename[:-len(".proto")]))
        for src in ctx.files.srcs
    ]
    mappings = dict(_WELL_KNOWN_GO_PACKAGES)
    mappings.update(protos)
    params = ["paths=source_relative"]
    if ctx.attr.grpc:
        params.append("plugins=grpc")
    params += ["M%s=%s" % (k, mappings[k]) for k in sorted(mappings.keys())]

    # The .proto files `srcs` import must be in the sandbox too.
    ctx.actions.run_shell(
        inputs = proto_srcs.values(),
        outputs = outs,
        command = _PROTOC_SCRIPT,
        arguments = [",".join(params), outs[0].dirname, ":".join(sorted(roots.keys()))] + proto_paths,
        use_default_shell_env = True,
        mnemonic = "BwGoProto",
        progress_message = "Generating Go code for %s" % ctx.label,
    )

    if ctx.attr.importpath in packages:
        fail("%s: importpath %s is already provided by a dependency" % (ctx.label, ctx.attr.importpath))
    packages[ctx.attr.importpath] = struct(importpath = ctx.attr.importpath, srcs = outs)
    return [
        DefaultInfo(files = depset(outs)),
        BwGoInfo(
            importpath = ctx.attr.importpath,
            packages = packages.values(),
            proto_importpaths = protos,
            proto_srcs = proto_srcs.values(),
        ),
    ]

bw_go_proto_library = rule(
    implementation = _bw_go_proto_library_impl,
    doc = """Go message (and with grpc = True, gRPC service) code for .proto files of ONE Go package.

    `srcs` are source .proto files, compiled with import paths relative to the root of the
    workspace that holds them (as //bazel:proto.bzl does for C++); they may live in another
    workspace (an author's workspace building @bulwark's Go targets). Their `option go_package` only names the Go package;
    where the code lives is `importpath` (protoc-gen-go requires one go_package for all srcs).
    `deps` are the bw_go_proto_library targets of the .proto files `srcs` import (well-known
    types map to golang/protobuf's ptypes packages).
    """,
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], mandatory = True),
        "importpath": attr.string(mandatory = True),
        "deps": attr.label_list(providers = [BwGoInfo]),
        "grpc": attr.bool(default = False),
    },
)

# Stages every package into a private GOPATH and runs `go build`. $1 = output file (execroot
# relative), $2 = main package import path, $3 = manifest ("<importpath>\t<file>" per line),
# $4 = the system GOPATH tree.
_GO_BUILD_SCRIPT = """\
set -euo pipefail
out="$PWD/$1"; main_pkg="$2"; manifest="$3"; system_gopath="$4"
go_tool=$(command -v go || true)
[ -n "$go_tool" ] || go_tool=/usr/lib/go/bin/go
if [ ! -x "$go_tool" ]; then
  echo "bw_go_binary: no Go toolchain on PATH; install golang-go (tools/setup)" >&2
  exit 1
fi
if [ ! -d "$system_gopath/src/github.com/hashicorp/go-plugin" ]; then
  echo "bw_go_binary: $system_gopath lacks go-plugin; run tools/setup" >&2
  exit 1
fi
work=$(mktemp -d "$PWD/_bw_gobuild.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
while IFS=$'\\t' read -r importpath file; do
  dest="$work/gopath/src/$importpath/$(basename "$file")"
  if [ -e "$dest" ]; then
    echo "bw_go_binary: two files named $(basename "$file") in Go package $importpath" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  cp "$file" "$dest"
done < "$manifest"
mkdir -p "$work/tmp"
env -i \\
  PATH="$PATH" HOME="$work" TMPDIR="$work/tmp" GOTMPDIR="$work/tmp" \\
  GOCACHE="$work/cache" GOENV=off GOFLAGS= GO111MODULE=off GOPROXY=off GONOSUMDB= \\
  GOPATH="$work/gopath:$system_gopath" CGO_ENABLED=0 \\
  "$go_tool" build -trimpath -buildvcs=false -o "$out" "$main_pkg"
"""

def _bw_go_binary_impl(ctx):
    packages, _, _ = _merge_deps(ctx.attr.deps)
    main_importpath = "bulwark_main/%s/%s" % (ctx.label.package, ctx.label.name)
    packages[main_importpath] = struct(importpath = main_importpath, srcs = ctx.files.srcs)

    lines = []
    inputs = []
    for importpath in sorted(packages.keys()):
        for f in packages[importpath].srcs:
            lines.append("%s\t%s" % (importpath, f.path))
            inputs.append(f)
    manifest = ctx.actions.declare_file(ctx.label.name + ".gopath_manifest")
    ctx.actions.write(manifest, "\n".join(lines) + "\n")

    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.run_shell(
        inputs = inputs + [manifest],
        outputs = [out],
        command = _GO_BUILD_SCRIPT,
        arguments = [out.path, main_importpath, manifest.path, SYSTEM_GOPATH],
        use_default_shell_env = True,
        mnemonic = "BwGoBuild",
        progress_message = "go build %s" % ctx.label,
    )
    return [DefaultInfo(
        files = depset([out]),
        executable = out,
        runfiles = ctx.runfiles(files = [out]),
    )]

_bw_go_binary = rule(
    implementation = _bw_go_binary_impl,
    executable = True,
    attrs = {
        "srcs": attr.label_list(allow_files = [".go"], mandatory = True),
        "deps": attr.label_list(providers = [BwGoInfo]),
    },
)

def bw_go_binary(name, srcs, deps = [], **kwargs):
    """A static Go executable from `srcs` (package main) and bw_go_library/proto deps.

    Imports not provided by `deps` resolve in Debian's GOPATH (SYSTEM_GOPATH), e.g.
    github.com/hashicorp/go-plugin. The output is the file `name`: `bazel run` it, or list it in
    a test's `data` and find it with $(rootpath ...).
    """
    _bw_go_binary(name = name, srcs = srcs, deps = deps, **kwargs)
