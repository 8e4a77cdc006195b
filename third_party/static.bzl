"""Link flags for a system library that `--config=static_plugin` links statically."""

def static_when_asked(libs):
    """`libs` as they are, or between -Bstatic and -Bdynamic under --config=static_plugin.

    Only libraries Debian ships as archives (.a) may be given; the rest of the link (glibc,
    libstdc++, simdjson, which has no archive) stays dynamic.
    """
    return select({
        "//third_party:static_plugin": ["-Wl,-Bstatic"] + libs + ["-Wl,-Bdynamic"],
        "//conditions:default": libs,
    })
