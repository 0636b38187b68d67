#!/usr/bin/env python3
"""The noise-proof performance guard (docs/performance.md, "Instruction guard").

Counts the instructions one fixed, deterministic tobsim run executes with real
crypto (valgrind --tool=callgrind: the count does not depend on how loaded the
machine is) and divides by the operations it committed at every node:
instructions per committed operation. Two figures are guarded: all instructions
(libsodium's Ed25519 and coin arithmetic are ~97 % of them, so this one moves
with the number of signature and coin operations) and the instructions outside
libsodium (tobd's own code, libc, libstdc++: a regression there would vanish in
the total). bench/instructions.json holds the history of recorded values; the
last entry is the reference.

  instructions.py check  TOBSIM [--history F] [--tolerance 0.20] [--expect fail]
      measure; fail (exit 1) when the count exceeds the reference by more than
      the tolerance. A count far below it passes and says so (record it).
      --expect fail inverts the verdict (exit 0 only if the guard tripped): the
      self-test with a planted slowdown.
  instructions.py record TOBSIM [--history F] [--note TEXT]
      measure and append the value (with commit and date) to the history.

--build-id names the compiler and build type (CMake passes it). The count is
only comparable within one: on another, `check` skips (exit 77) and says so.
Extra arguments after `--` go to tobsim (e.g. `-- --plant-extra-work 40000`
to see the check catch a planted slowdown).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = os.path.join(ROOT, "bench", "instructions.json")
# The fixed run: 4 honest nodes, real Ed25519 and threshold coin, a benign network,
# 2 clients, 8 single-operation transactions over 300 logical ms, seed 1 (about
# 9 billion instructions: ~30 s under callgrind). Changing it makes old records
# incomparable: record a new value in the same commit.
RUN = ["--nodes", "4", "--faulty", "0", "--crypto", "real", "--drop", "0", "--dup", "0",
       "--crash", "0", "--no-partitions", "--seeds", "1", "--clients", "2", "--txs", "8",
       "--safety-ms", "300", "--json"]
CRYPTO_OBJECT = "libsodium"
FIGURES = [("per_op", "all instructions"), ("non_crypto_per_op", "outside libsodium")]


def self_cost_by_object(path):
    """Self instruction counts per object file from a callgrind output file."""
    names, current, skip = {}, None, False
    by_object = {}
    with open(path) as f:
        for line in f:
            if skip:  # the line after calls= is the call's inclusive cost
                skip = False
                continue
            m = re.match(r"^(c?ob)=\((\d+)\)\s*(.*)$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "ob":
                    current = names.get(m.group(2), "?")
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    by_object[current] = by_object.get(current, 0) + int(parts[1])
    return by_object


def measure(tobsim, extra):
    with tempfile.TemporaryDirectory(prefix="tob-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", tobsim] + RUN + extra
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"instructions: {' '.join(argv)} failed ({r.returncode}):\n"
                     f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        by_object = self_cost_by_object(out)
    total = sum(by_object.values())
    crypto = sum(v for k, v in by_object.items() if k and CRYPTO_OBJECT in k)
    if not total:
        sys.exit("instructions: no instruction count in callgrind's output")
    if report["violations"]["count"] or not report["committed_ops"]:
        sys.exit(f"instructions: the fixed run failed or committed nothing: {report}")
    ops = report["committed_ops"]
    return {"instructions": total, "non_crypto_instructions": total - crypto,
            "committed_ops": ops, "epochs": report["epochs"],
            "fingerprint": report["fingerprint"], "per_op": round(total / ops),
            "non_crypto_per_op": round((total - crypto) / ops)}


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
    ap.add_argument("--build-id", default="", help="compiler and build type")
    ap.add_argument("--expect", choices=["pass", "fail"], default="pass")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (make deps): skipped")
        return 77
    m = measure(args.tobsim, extra)
    print(f"instructions: {m['instructions']:,} for {m['committed_ops']} committed ops "
          f"({m['epochs']} epochs): {m['per_op']:,} per op, {m['non_crypto_per_op']:,} of "
          f"them outside libsodium")
    data = load(args.history)
    if args.mode == "record":
        commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
        if git("status", "--porcelain", "--untracked-files=no"):
            commit += "-dirty"
        entry = dict(m, commit=commit, date=datetime.date.today().isoformat(),
                     build=args.build_id, note=args.note)
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
    if args.build_id and ref.get("build") and ref["build"] != args.build_id:
        print(f"instructions: the reference was recorded with {ref['build']}, this is "
              f"{args.build_id}: not comparable, skipped (make bench-record on this build)")
        return 77
    tripped = False
    for key, what in FIGURES:
        if key not in ref:
            continue
        ratio = m[key] / ref[key]
        print(f"{what}: {m[key]:,} per op, reference {ref[key]:,} (commit {ref['commit']}, "
              f"{ref['date']}): {ratio:.3f} x")
        if ratio > 1 + args.tolerance:
            tripped = True
            print(f"FAIL: {what} per committed op grew {100 * (ratio - 1):.1f} % (more than "
                  f"{100 * args.tolerance:.0f} %). If that is deliberate, record the new "
                  f"value: make bench-record")
        elif ratio < 1 - args.tolerance:
            print("note: far below the reference; `make bench-record` keeps the gain guarded")
    if args.expect == "fail":
        print("self-test: the guard " + ("tripped, as it must" if tripped else
                                         "did NOT trip on the planted slowdown"))
        return 0 if tripped else 1
    if not tripped:
        print("ok")
    return 1 if tripped else 0


if __name__ == "__main__":
    sys.exit(main())
