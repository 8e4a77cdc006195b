"""Compiles .proto files with Debian's protoc and grpc_cpp_plugin (no downloaded toolchain)."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def bw_proto_library(name, srcs, grpc = False, deps = [], visibility = None):
    """C++ message (and, with grpc = True, service) code for `srcs`.

    Import paths are relative to the workspace root, e.g. `import "proto/plugin/grpc_broker.proto"`.
    `deps` are other bw_proto_library targets whose .proto files `srcs` import; their own deps'
    .proto files are passed along too (`<name>_srcs` is transitive).
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    pkg = native.package_name()

    # When bulwark is an external repository (a plugin author's workspace loads it as
    # @bulwark), its sources sit under external/<name> and its outputs under
    # $(GENDIR)/external/<name>; import paths stay relative to bulwark's own root.
    repo = native.repository_name()
    root = "" if repo == "@" else "external/" + repo[1:]
    proto_path = root if root else "."
    out_dir = "$(GENDIR)/" + root if root else "$(GENDIR)"
    cmd = "protoc --proto_path=%s --cpp_out=%s" % (proto_path, out_dir)
    if grpc:
        cmd += " --grpc_out=%s --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)" % out_dir
    prefix = "/".join([p for p in [root, pkg] if p])
    cmd += " " + " ".join([(prefix + "/" + s) if prefix else s for s in srcs])
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = cmd,
    )
    # Transitive: a genrule that imports one of `srcs` also needs every .proto those import.
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
    )
    # `<name>_messages`: the message classes alone, for core code that carries serialized
    # messages but must not depend on gRPC. With grpc = True, `<name>` adds the service stubs.
    messages = [o for o in outs if not o.endswith(".grpc.pb.h") and not o.endswith(".grpc.pb.cc")]
    if not grpc:
        cc_library(
            name = name,
            srcs = [o for o in messages if o.endswith(".cc")],
            hdrs = [o for o in messages if o.endswith(".h")],
            deps = [d + "_messages" for d in deps] + [Label("//third_party:protobuf")],
            visibility = visibility,
        )
        native.alias(name = name + "_messages", actual = name, visibility = visibility)
        return
    cc_library(
        name = name + "_messages",
        srcs = [o for o in messages if o.endswith(".cc")],
        hdrs = [o for o in messages if o.endswith(".h")],
        deps = [d + "_messages" for d in deps] + [Label("//third_party:protobuf")],
        visibility = visibility,
    )
    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".grpc.pb.cc")],
        hdrs = [o for o in outs if o.endswith(".grpc.pb.h")],
        deps = [name + "_messages"] + deps + [Label("//third_party:protobuf"), Label("//third_party:grpc")],
        visibility = visibility,
    )
