#!/usr/bin/env python3
"""Runs one tobsim sweep and checks its JSON summary (CTest label `sim`).

  check_sweep.py --expect clean   -- TOBSIM ARGS...   violations == 0 and committed == submitted
  check_sweep.py --expect safe    -- TOBSIM ARGS...   violations == 0 (runs beyond the fault bound)
  check_sweep.py --expect violation -- TOBSIM ARGS... violations > 0 (a checker self-test)

The exit status of tobsim itself is not trusted either way: the JSON decides.
"""
import argparse
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["clean", "safe", "violation", "deterministic"], required=True)
    ap.add_argument("--expect-check", action="append", default=[],
                    help="with --expect violation: the first failing check must be one of these")
    ap.add_argument("tobsim")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = [x for x in a.args if x != "--"]
    cmd = [a.tobsim] + args + ["--json"]
    if a.expect == "deterministic":
        # The same sweep twice must give the same summary (wall time aside).
        runs = []
        for _ in range(2):
            print("running:", " ".join(cmd), flush=True)
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            js = [l for l in p.stdout.splitlines() if l.strip().startswith("{")]
            if not js:
                print("FAIL: no JSON from tobsim")
                return 1
            r = json.loads(js[-1])
            r.pop("wall_ms", None)
            runs.append(r)
        print(json.dumps(runs[0], indent=1))
        if runs[0] != runs[1]:
            print("FAIL: two runs of the same seeds differ:", json.dumps(runs[1], indent=1))
            return 1
        print("OK: identical summaries and fingerprints")
        return 0
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stderr:
        sys.stderr.write(proc.stderr[-4000:])
    lines = [l for l in proc.stdout.splitlines() if l.strip().startswith("{")]
    if not lines:
        print("FAIL: no JSON from tobsim (exit %d)" % proc.returncode)
        print(proc.stdout[-4000:])
        return 1
    try:
        res = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        print("FAIL: bad JSON:", e, lines[-1][:2000])
        return 1
    print(json.dumps(res, indent=1))
    v = res["violations"]["count"]
    if a.expect in ("clean", "safe"):
        ok = True
        if v != 0:
            print("FAIL: %d failing seed(s); first %s [%s] %s" % (
                v, res["violations"].get("first_seed"), res["violations"].get("first_check"),
                res["violations"].get("first_detail")))
            print("replay:", res["violations"].get("replay"))
            ok = False
        if a.expect == "clean" and res["committed_txs"] != res["submitted_txs"]:
            print("FAIL: committed %d != submitted %d" % (res["committed_txs"], res["submitted_txs"]))
            ok = False
        if res["seeds"] == 0 or res["submitted_txs"] == 0:
            print("FAIL: nothing ran")
            ok = False
        return 0 if ok else 1
    if v > 0 and a.expect_check and res["violations"]["first_check"] not in a.expect_check:
        print("FAIL: first violation is %s, expected one of %s" % (
            res["violations"]["first_check"], a.expect_check))
        return 1
    if v > 0:
        print("OK: the checkers caught the planted fault (first seed %s, check %s)" % (
            res["violations"]["first_seed"], res["violations"]["first_check"]))
        return 0
    print("FAIL: expected a violation within %d seeds, none reported" % res["seeds"])
    return 1


if __name__ == "__main__":
    sys.exit(main())
