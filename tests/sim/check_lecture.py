#!/usr/bin/env python3
"""Runs tobsim on the lecture's protocols and checks what it reports (CTest label `sim`).

  check_lecture.py --expect example  -- TOBSIM ARGS   text mode: the lecture's 3/2 vs 1 divergence
  check_lecture.py --expect diverges -- TOBSIM ARGS   JSON: agreement lost in every seed, liveness kept
  check_lecture.py --expect clean    -- TOBSIM ARGS   JSON: agreement and liveness in every seed
  check_lecture.py --expect broken   -- TOBSIM ARGS   JSON: agreement or liveness lost in some seed
  check_lecture.py --expect compare  -- TOBSIM ARGS   JSON of --compare: the table's key cells

tobsim's exit status is not trusted either way: its output decides.
"""
import argparse
import json
import re
import subprocess
import sys


def run(cmd):
    print("running:", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stdout.write(p.stdout[-6000:])
    sys.stderr.write(p.stderr[-2000:])
    return p.stdout


def last_json(out):
    js = [l for l in out.splitlines() if l.strip().startswith("{")]
    if not js:
        raise SystemExit("FAIL: no JSON from tobsim")
    return json.loads(js[-1])


def check_example(out):
    # The node that got "/2" first ends at 3/2, the one that got "+1" first at 1.
    half_first = re.search(r"node \d+: /2 \+1\s+->\s+3/2 \(1\.5\)", out)
    one_first = re.search(r"node \d+: \+1 /2\s+->\s+1 \(1\)", out)
    diverged = re.search(r"violation \[agreement\] .*states 3/2 \(1\.5\) vs 1 \(1\)|"
                         r"violation \[agreement\] .*states 1 \(1\) vs 3/2 \(1\.5\)", out)
    return [msg for ok, msg in [(half_first, "no node printed /2 +1 -> 3/2 (1.5)"),
                                (one_first, "no node printed +1 /2 -> 1 (1)"),
                                (diverged, "no agreement violation naming 3/2 vs 1")] if not ok]


def check_row(r, expect):
    seeds, agree, live = r["seeds"], r["agreement_held"], r["liveness_held"]
    name = "%s/%s/byz=%s" % (r["protocol"], r["network"], r["byzantine"])
    if expect == "diverges" and not (agree == 0 and live == seeds):
        return ["%s: expected agreement 0/%d and liveness %d/%d, got %d and %d"
                % (name, seeds, seeds, seeds, agree, live)]
    if expect == "clean" and not (agree == seeds and live == seeds):
        return ["%s: expected agreement and liveness in all %d seeds, got %d and %d (first: %s)"
                % (name, seeds, agree, live, r.get("first_detail"))]
    if expect == "broken" and agree == seeds and live == seeds:
        return ["%s: expected a lost property in some of %d seeds, none was lost" % (name, seeds)]
    return []


def check_compare(js):
    rows = {(r["protocol"], r["network"], r["byzantine"] > 0): r for r in js["compare"]}
    expected = [
        (("naive", "synchronous", False), "diverges"),
        (("naive", "asynchronous", False), "diverges"),
        (("naive", "synchronous", True), "diverges"),
        (("sync", "synchronous", False), "clean"),
        (("sync", "asynchronous", False), "broken"),
        (("sync", "synchronous", True), "clean"),
        (("async", "synchronous", False), "clean"),
        (("async", "asynchronous", False), "clean"),
        (("async", "asynchronous", True), "clean"),
    ]
    errors = []
    for key, expect in expected:
        if key not in rows:
            errors.append("missing row %s" % (key,))
            continue
        errors += check_row(rows[key], expect)
    for r in js["compare"]:
        if not r["messages_per_request"] > 0 or not r["latency_rounds"] > 0:
            errors.append("%s/%s: empty latency or message figure" % (r["protocol"], r["network"]))
    # Rotation costs rounds: with t faulty leaders sync is not faster than without.
    s0, s1 = rows.get(("sync", "synchronous", False)), rows.get(("sync", "synchronous", True))
    if s0 and s1 and not s1["latency_rounds"] >= s0["latency_rounds"] * 0.9:
        errors.append("sync latency with Byzantine leaders below the fault-free latency")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["example", "diverges", "clean", "broken", "compare"],
                    required=True)
    ap.add_argument("tobsim")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = [x for x in a.args if x != "--"]
    if a.expect == "example":
        errors = check_example(run([a.tobsim] + args))
    elif a.expect == "compare":
        errors = check_compare(last_json(run([a.tobsim] + args + ["--json"])))
    else:
        errors = check_row(last_json(run([a.tobsim] + args + ["--json"])), a.expect)
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print("OK: %s" % a.expect)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
