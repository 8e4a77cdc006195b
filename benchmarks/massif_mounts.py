#!/usr/bin/python3
"""Where a plugin's heap per mount goes: two massif profiles (fewer and more mounts) compared by
part of the stack (TLS, gRPC channel, HTTP/2 transport, the SDK and backend), as a Markdown table.

  bazel run -c opt //benchmarks:plugin_protocol_benchmark -- --mounts=1 --rounds=1 --samples=50 \
      --warmup=0 --plugin_wrapper=/usr/bin/valgrind.bin,--tool=massif,--depth=40,\
--threshold=0.2,--massif-out-file=/tmp/m1.%p
  (the same with --mounts=100 and /tmp/m100.%p)
  benchmarks/massif_mounts.py /tmp/m1.PID /tmp/m100.PID 1 100

Each allocation is put in the first part whose keywords appear anywhere on its stack, in the
order of PARTS; the figures are massif's peak snapshot (useful heap, no malloc overhead).
"""
import collections
import re
import sys

PARTS = [
    ("TLS record buffers (BIO pair, SSL read/write buffers)",
     ["BIO_ctrl", "BIO_new_bio_pair", "ssl3_setup", "BUF_MEM_grow"]),
    ("TLS session (SSL, SSL_CTX, keys, certificates)",
     ["SSL_new", "SSL_CTX", "tsi_", "CRYPTO_zalloc", "EVP_", "X509", "PEM_", "BN_", "EC_",
      "ASN1", "libssl", "libcrypto"]),
    ("HTTP/2 transport, endpoint and slices",
     ["chttp2", "Chttp2", "secure_endpoint", "grpc_tcp", "MakeSlice", "MemoryQuota",
      "MemoryOwner"]),
    ("gRPC channel, subchannel, args, channelz",
     ["Subchannel", "ClientChannel", "ChannelStack", "AVL", "channelz", "Channel", "grpc_core::"]),
    ("bulwark SDK and the backend", ["bulwark::"]),
]
OTHER = "other (gpr, libstdc++, start-up)"


def peak_tree(path):
    lines = open(path).read().split("\n")
    peaks = [i for i, l in enumerate(lines) if l.startswith("heap_tree=peak")]
    if not peaks:
        sys.exit(f"{path}: no peak snapshot (not a massif output file?)")

    def parse(i):
        m = re.match(r"^\s*n(\d+): (\d+) (.*)$", lines[i])
        node = {"bytes": int(m.group(2)), "name": m.group(3), "children": []}
        i += 1
        for _ in range(int(m.group(1))):
            child, i = parse(i)
            node["children"].append(child)
        return node, i

    return parse(peaks[-1] + 1)[0]


def by_part(node, stack, out):
    stack = stack + [node["name"]]
    own = node["bytes"] - sum(c["bytes"] for c in node["children"])
    if own > 0:
        text = " ".join(stack)
        part = next((name for name, keys in PARTS if any(k in text for k in keys)), OTHER)
        out[part] += own
    for child in node["children"]:
        by_part(child, stack, out)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: massif_mounts.py FEWER.massif MORE.massif FEWER_MOUNTS MORE_MOUNTS")
    fewer, more = collections.Counter(), collections.Counter()
    by_part(peak_tree(sys.argv[1]), [], fewer)
    by_part(peak_tree(sys.argv[2]), [], more)
    n_fewer, n_more = int(sys.argv[3]), int(sys.argv[4])
    added = n_more - n_fewer
    print(f"| part | heap, {n_fewer} mounts KiB | heap, {n_more} mounts KiB | per added mount KiB |")
    print("| --- | --- | --- | --- |")
    for part in sorted(set(fewer) | set(more), key=lambda p: fewer[p] - more[p]):
        print(f"| {part} | {fewer[part] / 1024:.0f} | {more[part] / 1024:.0f} | "
              f"{(more[part] - fewer[part]) / 1024 / added:.1f} |")
    total_fewer, total_more = sum(fewer.values()), sum(more.values())
    print(f"| total (massif peak, useful heap) | {total_fewer / 1024:.0f} | "
          f"{total_more / 1024:.0f} | {(total_more - total_fewer) / 1024 / added:.1f} |")


if __name__ == "__main__":
    main()
