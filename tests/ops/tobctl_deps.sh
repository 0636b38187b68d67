#!/usr/bin/env bash
# tobctl and applications link the client library (tob_client), which must not
# pull in the node's heavy dependencies: RocksDB, cpp-httplib, libsystemd.
# Two checks, because the toolchain links with --as-needed and ldd alone would
# not notice a link line that names them without using a symbol yet:
#   1. the link command CMake generated for tobctl names none of them;
#   2. ldd of the built tobctl lists none of them.
#
# usage: tobctl_deps.sh BUILD_DIR   (the CMake build directory)
set -euo pipefail

build=${1:?usage: tobctl_deps.sh BUILD_DIR}
tobctl=$build/bin/tobctl
forbidden='rocksdb|httplib|systemd'
failed=0

fail() {
    echo "FAIL: $*" >&2
    failed=1
}

[ -x "$tobctl" ] || { echo "FAIL: $tobctl: not built" >&2; exit 1; }

# 1. The link command (Makefile generators: link.txt; Ninja: build.ninja).
link=
if [ -f "$build/cli/CMakeFiles/tobctl.dir/link.txt" ]; then
    link=$(cat "$build/cli/CMakeFiles/tobctl.dir/link.txt")
elif [ -f "$build/build.ninja" ]; then
    # The build statement of bin/tobctl and its indented variables.
    link=$(awk '/^build [^:]*bin\/tobctl: /{on=1; print; next} on && /^  /{print; next} {on=0}' \
        "$build/build.ninja")
fi
if [ -z "$link" ]; then
    fail "cannot find tobctl's link command under $build"
else
    hits=$(printf '%s\n' "$link" | tr ' ' '\n' | grep -Ei "$forbidden" || true)
    if [ -n "$hits" ]; then
        fail "tobctl's link command names: $(echo $hits)"
    else
        echo "ok: tobctl's link command names no RocksDB, cpp-httplib or libsystemd"
    fi
fi

# 2. The shared libraries the binary loads.
libs=$(ldd "$tobctl")
hits=$(printf '%s\n' "$libs" | grep -Ei "$forbidden" || true)
if [ -n "$hits" ]; then
    fail "ldd $tobctl lists: $(echo $hits)"
else
    echo "ok: ldd tobctl lists $(printf '%s\n' "$libs" | grep -c '=>') libraries, none of them RocksDB, cpp-httplib or libsystemd"
fi

exit $failed
