#!/usr/bin/env bash
# The systemd files of systemd/ are valid:
#   - `systemd-analyze verify` reports nothing on tobd@.service (as instance
#     tobd@node0, with ExecStart pointed at the built tobd, since verify checks
#     that the binary exists), and the unit has the settings docs/operations.md
#     promises;
#   - self-check: broken copies of the unit DO fail, so a verifier that lets
#     everything through (e.g. in a container without systemd as PID 1) is caught;
#   - the offline `systemd-analyze security` exposure stays at most 2.0
#     (docs/operations.md records the number);
#   - systemd-sysusers and systemd-tmpfiles accept tobd.sysusers and
#     tobd.tmpfiles (applied to a scratch root, not to this machine).
#
# usage: verify_units.sh SYSTEMD_DIR TOBD_BINARY
set -euo pipefail

src=${1:?usage: verify_units.sh SYSTEMD_DIR TOBD_BINARY}
tobd=${2:?usage: verify_units.sh SYSTEMD_DIR TOBD_BINARY}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tobd-verify-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || fail "$tool not found (Debian package systemd; make deps installs it)"
done
[ -x "$tobd" ] || fail "$tobd is not an executable (build tobd first)"
export SYSTEMD_LOG_COLOR=0 SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat

# verify FILE: exit 0 and no diagnostics at all (verify exits 0 on most
# warnings, e.g. an unknown key or value, so the output must be empty too).
verify() {
    local out
    out=$(systemd-analyze verify --man=no "$1" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
}

# instance DIR [SED-EXPR]: tobd@node0.service in DIR from the source unit, ExecStart
# pointed at the built binary, then SED-EXPR applied.
instance() {
    mkdir -p "$1"
    sed -e "s#^ExecStart=/usr/bin/tobd #ExecStart=$tobd #" -e "${2:-}" \
        "$src/tobd@.service" >"$1/tobd@node0.service"
    echo "$1/tobd@node0.service"
}

step "systemd-analyze verify tobd@node0.service"
unit=$(instance "$tmp/good")
grep -q "^ExecStart=$tobd --config /etc/tobd/%i/config.toml\$" "$unit" ||
    fail "ExecStart=/usr/bin/tobd --config /etc/tobd/%i/config.toml not found in $src/tobd@.service"
verify "$unit" || fail "systemd-analyze verify reported problems on $src/tobd@.service"

step "the unit has the promised settings"
for line in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30s' 'Restart=on-failure' \
    'RestartSec=2s' 'User=tobd' 'Group=tobd' 'StateDirectory=tobd/%i tobd-keys/%i' \
    'ConfigurationDirectory=tobd/%i' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'PrivateDevices=yes' 'CapabilityBoundingSet=' 'AmbientCapabilities=' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service' \
    'SystemCallArchitectures=native' 'MemoryDenyWriteExecute=yes' 'LockPersonality=yes' \
    'RestrictRealtime=yes' 'RestrictNamespaces=yes' 'RestrictSUIDSGID=yes' \
    'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' 'ProtectKernelLogs=yes' \
    'ProtectControlGroups=yes' 'ProtectClock=yes' 'ProtectHostname=yes' \
    'ProtectProc=invisible' 'ProcSubset=pid' 'UMask=0077' 'LimitNOFILE=65536'; do
    grep -qxF "$line" "$src/tobd@.service" || fail "tobd@.service lacks the line: $line"
done

step "self-check: broken units fail verification"
n=0
for broken in 's/^Type=notify$/Type=notfy/' 's/^ProtectSystem=strict$/ProtectSystm=strict/' \
    "s#^ExecStart=$tobd #ExecStart=tobd-not-a-path #" 's/^WatchdogSec=30s$/WatchdogSec=thirty/' \
    's/^\[Service\]$/[Servce]/'; do
    n=$((n + 1))
    bad=$(instance "$tmp/broken$n" "$broken")
    if cmp -s "$bad" "$unit"; then fail "self-check edit '$broken' changed nothing"; fi
    if verify "$bad" >/dev/null; then fail "a broken unit ($broken) passed verification"; fi
done
echo "$n broken units rejected"

step "systemd-analyze security --offline=true"
security=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) ||
    fail "systemd-analyze security failed: $security"
score=$(sed -n 's/.*Overall exposure level for tobd@node0.service: \([0-9.]*\).*/\1/p' <<<"$security")
[ -n "$score" ] || fail "no exposure level in: $security"
echo "exposure level $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score is above 2.0:
$security"

step "sysusers.d and tmpfiles.d files, on a scratch root"
root=$tmp/root
mkdir -p "$root/etc"
out=$(systemd-sysusers --root="$root" "$src/tobd.sysusers" 2>&1) || fail "systemd-sysusers: $out"
grep -q '^tobd:x:[0-9]*:[0-9]*:tobd BFT node daemon:/var/lib/tobd:' "$root/etc/passwd" ||
    fail "no tobd user in the scratch passwd: $(cat "$root/etc/passwd" 2>&1)"
grep -q '^tobd:x:' "$root/etc/group" || fail "no tobd group in the scratch group file"
out=$(systemd-tmpfiles --create --root="$root" "$src/tobd.tmpfiles" 2>&1) ||
    fail "systemd-tmpfiles: $out"
for d in etc/tobd var/lib/tobd var/lib/tobd-keys; do
    [ -d "$root/$d" ] || fail "systemd-tmpfiles did not create /$d"
done
echo "ok"
