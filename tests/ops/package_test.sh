#!/usr/bin/env bash
# The Debian package: CPack builds it from the build tree's install rules (into
# a scratch directory, leaving the build tree alone), and
#   - dpkg-deb -c lists the binaries, the unit, the sysusers/tmpfiles files and
#     the example config under /usr;
#   - dpkg-deb -I says Package: tobd and Depends on the Debian runtime libraries
#     (found by dpkg-shlibdeps: libsodium, libzmq, librocksdb, ...);
#   - the maintainer scripts are executable and parse;
#   - unpacked (dpkg-deb -x), the unit's ExecStart is /usr/bin/tobd, the unpacked
#     tobd runs, and `systemd-analyze verify` accepts the unit.
#
# usage: package_test.sh BUILD_DIR   (tobd and tobctl built in it)
set -euo pipefail

build=${1:?usage: package_test.sh BUILD_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobd-package-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

for tool in cpack dpkg-deb dpkg-shlibdeps readelf systemd-analyze; do
    command -v "$tool" >/dev/null || fail "$tool not found (make deps installs dpkg-dev and systemd)"
done
export SYSTEMD_LOG_COLOR=0 SYSTEMD_COLORS=0

step "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
    fail "cpack failed: $(cat "$tmp/cpack.log")"
shopt -s nullglob
debs=("$tmp"/out/tobd_*.deb)
[ "${#debs[@]}" = 1 ] || fail "expected one tobd_*.deb, found: ${debs[*]:-none}; $(cat "$tmp/cpack.log")"
deb=${debs[0]}
echo "$deb"

step "dpkg-deb -c: contents"
dpkg-deb -c "$deb" >"$tmp/contents"
cat "$tmp/contents"
for path in ./usr/bin/tobd ./usr/bin/tobctl ./usr/lib/systemd/system/tobd@.service \
    ./usr/lib/sysusers.d/tobd.conf ./usr/lib/tmpfiles.d/tobd.conf \
    ./usr/share/doc/tobd/tobd.example.toml ./usr/share/doc/tobd/operations.md; do
    awk -v p="$path" '$NF == p { found = 1 } END { exit !found }' "$tmp/contents" ||
        fail "$path is not in the package"
done
grep -q ' \./usr/bin/tobd$' "$tmp/contents" && grep '\./usr/bin/tobd$' "$tmp/contents" | grep -q '^-rwxr-xr-x' ||
    fail "usr/bin/tobd is not 0755"
if grep -q '_CPack_Packages\|/usr/local' "$tmp/contents"; then fail "staging or /usr/local paths leaked"; fi

step "dpkg-deb -I: metadata"
dpkg-deb -I "$deb" >"$tmp/info"
cat "$tmp/info"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = tobd ] || fail "Package is not tobd"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is $(field Architecture)"
[ -n "$(field Version)" ] || fail "no Version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
echo "Depends: $depends"
# has_dep PKG: PKG is one of the Depends alternatives (version constraints aside).
has_dep() { tr ',|' '\n\n' <<<"$depends" | awk '{ print $1 }' | grep -qxF "$1"; }
# Always: the C/C++ runtime and the libraries tobd cannot work without.
for pkg in libc6 libstdc++6 libsodium23 libzmq5; do
    has_dep "$pkg" || fail "Depends lacks $pkg: $depends"
done
# And the Debian package of every shared library the binaries load (librocksdb,
# libsystemd0, libcpp-httplib, ... as soon as the code uses them: the linker
# drops libraries nothing references).
dpkg-deb -x "$deb" "$tmp/libs-root"
for binary in "$tmp/libs-root/usr/bin/tobd" "$tmp/libs-root/usr/bin/tobctl"; do
    # Direct needs only (readelf's NEEDED; ldd would add their own dependencies),
    # each resolved to its file through ldd.
    needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
    [ -n "$needed" ] || fail "readelf found no NEEDED entries in $binary"
    ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r soname path; do
        grep -qxF "$soname" <<<"$needed" || continue
        pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null || true)
        pkg=${pkg%%:*}
        [ -n "$pkg" ] || fail "$soname ($path, needed by ${binary##*/}) belongs to no Debian package"
        # A dependency may name the package or a virtual package it Provides
        # (libspdlog1.10 provides libspdlog1.10-fmt9, the name its shlibs file uses).
        provides=$(dpkg-query -W -f='${Provides}' "$pkg" 2>/dev/null | tr ',' '\n' | awk '{ print $1 }')
        satisfied=no
        for name in "$pkg" $provides; do
            if has_dep "$name"; then satisfied=yes; fi
        done
        [ "$satisfied" = yes ] ||
            fail "${binary##*/} needs $soname from $pkg, which Depends lacks: $depends"
        echo "${binary##*/}: $soname -> $pkg"
    done
done
# tobd's storage, sd_notify and metrics endpoint come from Debian's shared
# libraries, so the package depends on them. (Debian's RocksDB CMake package
# also exports a static RocksDB::rocksdb, librocksdb.a: linking that would bundle
# RocksDB into tobd, out of reach of Debian's security updates.)
tobd_needed=$(readelf -d "$tmp/libs-root/usr/bin/tobd" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p')
for lib_pkg in librocksdb.so:librocksdb libsystemd.so.0:libsystemd0 libcpp-httplib.so:libcpp-httplib; do
    lib=${lib_pkg%%:*}
    pkg=${lib_pkg#*:}
    grep -q "^${lib//./\\.}" <<<"$tobd_needed" ||
        fail "tobd does not load $lib (NEEDED: $(tr '\n' ' ' <<<"$tobd_needed")); link the shared library (RocksDB::rocksdb-shared, not the static RocksDB::rocksdb)"
    tr ',|' '\n\n' <<<"$depends" | awk '{ print $1 }' | grep -q "^${pkg}" ||
        fail "Depends lacks $pkg*: $depends"
    echo "tobd: $lib -> Depends $(tr ',' '\n' <<<"$depends" | grep -o "${pkg}[^ ]*" | head -1)"
done

step "maintainer scripts"
dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm; do
    [ -x "$tmp/control/$script" ] || fail "$script is missing or not executable"
    sh -n "$tmp/control/$script" || fail "$script does not parse"
done

step "dpkg-deb -x: the unpacked unit and binaries"
dpkg-deb -x "$deb" "$tmp/root"
unit=$tmp/root/usr/lib/systemd/system/tobd@.service
grep -qx 'ExecStart=/usr/bin/tobd --config /etc/tobd/%i/config.toml' "$unit" ||
    fail "the packaged unit's ExecStart is not /usr/bin/tobd: $(grep ExecStart "$unit")"
version=$("$tmp/root/usr/bin/tobd" --version) || fail "the packaged tobd does not run"
[[ "$version" == "tobd "* ]] || fail "unexpected tobd --version: $version"
"$tmp/root/usr/bin/tobctl" --help >/dev/null || fail "the packaged tobctl does not run"
# verify checks that ExecStart exists: point it at the unpacked binary.
mkdir -p "$tmp/verify"
sed "s#^ExecStart=/usr/bin/tobd #ExecStart=$tmp/root/usr/bin/tobd #" "$unit" >"$tmp/verify/tobd@node0.service"
out=$(systemd-analyze verify --man=no "$tmp/verify/tobd@node0.service" 2>&1) && [ -z "$out" ] ||
    fail "systemd-analyze verify on the packaged unit: $out"
echo "ok: $deb"
