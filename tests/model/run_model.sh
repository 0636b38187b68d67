#!/usr/bin/env bash
# Checks the spin model of the binary agreement (tests/model/aba_conf.pml,
# docs/aba.md "The model"):
#   1. the real rules, exhaustive search: spin must report "errors: 0";
#   2. a weakened rule (ACCEPT = t: a value enters bin_values on one BVAL instead
#      of 2t+1): spin must find a counterexample; its trail is replayed (spin -t)
#      and printed;
#   3. a witness run (-DWITNESS) that must find a decision in the last round, so
#      that "errors: 0" in 1 is not the result of a model that never decides.
# Exit status: 0 when all come out as expected, 1 otherwise, 77 (skip) when spin
# or a C compiler is missing.
#
# Usage: run_model.sh [--rounds R] [--variants] [--variant-rounds V]
#   --rounds R          rounds to explore (default 3; the weakened and witness runs
#                       use the same bound)
#   --variants          also run every weakening switch of the model and print
#                       which ones break agreement or validity
#   --variant-rounds V  rounds for --variants (default 2, to keep it short)
set -euo pipefail

if ! command -v spin >/dev/null 2>&1; then
    echo "SKIP: spin is not installed (Debian package spin)"
    exit 77
fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "SKIP: no C compiler ($cc) to build spin's verifier"
    exit 77
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rounds=3
variants=0
variant_rounds=2
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --variants) variants=1; shift ;;
        --variant-rounds) variant_rounds=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds R] [--variants] [--variant-rounds V]" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/aba_model.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/aba_conf.pml" "$work/"
cd "$work"

# verify NAME "SPIN -D FLAGS" "PAN FLAGS" ["CC FLAGS"]: generates, compiles and
# runs the verifier; its output goes to NAME.out. Exhaustive (no bitstate, no
# compression), safety properties only (assertions; no cycle checks).
verify() {
    local name=$1 defs=$2 panflags=$3 ccflags=${4:-}
    rm -f pan pan.* aba_conf.pml.trail
    # shellcheck disable=SC2086
    spin $defs -a aba_conf.pml >"$name.spin" 2>&1 || { cat "$name.spin"; return 1; }
    # shellcheck disable=SC2086
    "$cc" -O2 -w -DSAFETY $ccflags -o pan pan.c
    # shellcheck disable=SC2086
    ./pan -m100000 $panflags >"$name.out" 2>&1 || true
}

# The verifier's verdict. With -i every shorter counterexample found on the way is
# reported; the first and the last (shortest) one are enough.
summary() {
    {
        grep -m1 "assertion violated" "$1" | sed 's/^/first: /' || true
        grep "assertion violated" "$1" | tail -n +2 | tail -n 1 | sed 's/^/shortest: /' || true
        grep -E "error: max search depth|Search not completed|errors:|states, stored|elapsed time" "$1"
    } | sed 's/^/    /'
}

errors_of() { sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$1" | head -n 1; }

status=0

echo "== 1. the real rules (n = 4, t = 1, R = $rounds rounds, exhaustive)"
start=$(date +%s)
verify real "-DR=$rounds" ""
summary real.out
echo "    wall time: $(($(date +%s) - start)) s"
if [ "$(errors_of real.out)" != "0" ] || grep -q "max search depth" real.out; then
    echo "FAIL: the model of the real rules must give errors: 0 with a complete search"
    status=1
else
    echo "ok: agreement and validity hold in every run of $rounds rounds"
fi

echo
echo "== 2. weakened: b enters bin_values after t = 1 BVAL(b) instead of 2t+1 (-DACCEPT=1)"
# -i (with -DREACH): iterative shortening, so the trail printed is a shortest one.
verify weak "-DR=$rounds -DACCEPT=1" "-i" "-DREACH"
summary weak.out
weak_errors=$(errors_of weak.out)
if [ -z "$weak_errors" ] || [ "$weak_errors" = "0" ] || [ ! -f aba_conf.pml.trail ]; then
    echo "FAIL: the weakened model must produce a counterexample"
    status=1
else
    echo "   counterexample (spin -t replay of the shortest trail):"
    spin "-DR=$rounds" -DACCEPT=1 -t aba_conf.pml 2>&1 |
        grep -E "MSC:|Error|failed assertion|trail ends" | sed 's/^ *MSC: /    /; s/^spin: /    spin: /'
    echo "ok: spin found a violation (the trail above is a shortest one)"
fi

echo
echo "== 3. witness: some node decides in the last round (-DWITNESS must fail)"
verify witness "-DR=$rounds -DWITNESS" ""
if [ "$(errors_of witness.out)" = "0" ]; then
    echo "FAIL: no run decides in round $((rounds - 1)); the model may be vacuous"
    status=1
else
    echo "ok: runs reach decisions in round $((rounds - 1))"
fi

if [ "$variants" = 1 ]; then
    echo
    echo "== weakening switches, one at a time and in pairs (R = $variant_rounds)"
    # switch, expected outcome (0 = spin finds no violation, 1 = counterexample)
    while read -r defs expect; do
        [ -n "$defs" ] || continue
        flags=${defs//,/ }
        verify variant "-DR=$variant_rounds $flags" ""
        e=$(errors_of variant.out)
        got=$([ "${e:-0}" = "0" ] && echo 0 || echo 1)
        what=""
        if grep -q "assertion violated ((decided|tdv)!=3)" variant.out; then what="agreement broken"; fi
        if grep -q "assertion violated ((tdv&inputs)==tdv)" variant.out; then what="validity broken"; fi
        states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' variant.out | head -n 1)
        printf '    %-26s errors: %-3s %-17s %10s states\n' "$flags" "${e:-?}" "$what" "${states:-?}"
        if [ "$got" != "$expect" ]; then
            echo "    FAIL: expected $([ "$expect" = 1 ] && echo a counterexample || echo errors: 0)"
            status=1
        fi
    done <<'EOF'
-DRELAY=1 1
-DACCEPT=1 1
-DACCEPT=2 0
-DAUXQ=2 0
-DCONFQ=2 0
-DTERMT=1 1
-DOWN_VALS 0
-DAUX_EVERY 0
-DCONF_BIN 0
-DNO_SUBSET 1
-DAUXQ=2,-DOWN_VALS 1
-DAUX_EVERY,-DOWN_VALS 1
-DAUX_EVERY,-DCONFQ=2 1
-DAUXQ=2,-DCONFQ=2 1
-DALL_INPUTS 0
EOF
fi

echo
if [ "$status" = 0 ]; then echo "model: all checks as expected"; else echo "model: FAILED"; fi
exit "$status"
