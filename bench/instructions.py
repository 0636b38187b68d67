#!/usr/bin/env python3
"""The noise-proof performance guard (docs/performance.md, "Instruction guard").

Counts the instructions one fixed, deterministic tobsim run executes with real
crypto (valgrind --tool=callgrind: the count does not depend on how loaded the
machine is) and divides by the operations it committed at every node:
instructions per committed operation. bench/instructions.json holds the history
of recorded values; the last entry is the reference.

  instructions.py check  TOBSIM [--history F] [--tolerance 0.20]
      measure; fail (exit 1) when the count exceeds the reference by more than
      the tolerance. A count far below it passes and says so (record it).
  instructions.py record TOBSIM [--history F] [--note TEXT]
      measure and append the value (with commit and date) to the history.

Extra arguments after `--` go to tobsim (e.g. `-- --plant-extra-hashes 4000`
to see the check catch a planted slowdown).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = os.path.join(ROOT, "bench", "instructions.json")
# The fixed run: 4 honest nodes, real Ed25519 and threshold coin, a benign network,
# 2 clients, 16 transactions, seed 1. Changing it makes old records incomparable:
# record a new value in the same commit.
RUN = ["--nodes", "4", "--faulty", "0", "--crypto", "real", "--drop", "0", "--dup", "0",
       "--crash", "0", "--no-partitions", "--seeds", "1", "--clients", "2", "--txs", "16",
       "--safety-ms", "500", "--json"]


def measure(tobsim, extra):
    with tempfile.TemporaryDirectory(prefix="tob-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", tobsim] + RUN + extra
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"instructions: {' '.join(argv)} failed ({r.returncode}):\n"
                     f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        total = None
        with open(out) as f:
            for line in f:
                m = re.match(r"^(summary|totals):\s+(\d+)", line)
                if m:
                    total = int(m.group(2))
                    break
    if total is None:
        sys.exit("instructions: no instruction total in callgrind's output")
    if report["violations"]["count"] or not report["committed_ops"]:
        sys.exit(f"instructions: the fixed run failed or committed nothing: {report}")
    return {"instructions": total, "committed_ops": report["committed_ops"],
            "epochs": report["epochs"], "fingerprint": report["fingerprint"],
            "per_op": round(total / report["committed_ops"])}


def load(path):
    if not os.path.exists(path):
        return {"run": RUN, "history": []}
    with open(path) as f:
        return json.load(f)


def git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), stdout=subprocess.PIPE,
                          text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check", "record"])
    ap.add_argument("tobsim")
    ap.add_argument("--history", default=HISTORY)
    ap.add_argument("--tolerance", type=float, default=0.20)
    ap.add_argument("--note", default="")
    ap.add_argument("extra", nargs="*", help="after --: more tobsim arguments")
    args = ap.parse_args()

    m = measure(args.tobsim, args.extra)
    print(f"instructions: {m['instructions']:,} for {m['committed_ops']} committed ops "
          f"({m['epochs']} epochs): {m['per_op']:,} per op")
    data = load(args.history)
    if args.mode == "record":
        commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
        if git("status", "--porcelain", "--untracked-files=no"):
            commit += "-dirty"
        entry = dict(m, commit=commit, date=datetime.date.today().isoformat(), note=args.note)
        data["run"] = RUN
        data["history"].append(entry)
        with open(args.history, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        print(f"recorded in {args.history} (commit {commit})")
        return 0

    if not data["history"]:
        sys.exit(f"instructions: no recorded value in {args.history} (run `make bench-record`)")
    if data.get("run") != RUN:
        sys.exit("instructions: the recorded value is for another run; record a new one")
    ref = data["history"][-1]
    ratio = m["per_op"] / ref["per_op"]
    print(f"reference: {ref['per_op']:,} per op (commit {ref['commit']}, {ref['date']}); "
          f"now {ratio:.3f} x")
    if ratio > 1 + args.tolerance:
        print(f"FAIL: instructions per committed op grew {100 * (ratio - 1):.1f} % "
              f"(more than {100 * args.tolerance:.0f} %). If that is deliberate, record the "
              f"new value: make bench-record")
        return 1
    if ratio < 1 - args.tolerance:
        print("note: far below the reference; `make bench-record` keeps the gain guarded")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
