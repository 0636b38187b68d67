#!/usr/bin/env python3
"""Runs one tobsim sweep and checks its JSON summary (CTest label `sim`).

  check_sweep.py --expect clean   -- TOBSIM ARGS...   violations == 0 and committed == submitted
  check_sweep.py --expect safe    -- TOBSIM ARGS...   violations == 0 (runs beyond the fault bound)
  check_sweep.py --expect violation -- TOBSIM ARGS... violations > 0 (a checker self-test)
  check_sweep.py --expect growth -- TOBSIM ARGS...    the --sizes-every report is NOT flat (the
                                                      flatness check's own self-test)

  --expect-min FIELD=N   (clean/safe) a top-level JSON field must be at least N, e.g.
                         archive_proofs_served=1 shows that the archive path ran
  --expect-flat          (clean/safe) the "sizes" lines of --sizes-every must be flat: for
                         every node and field, the largest value in the second half of the
                         reports is at most 1.5 x the largest in the first half + 16

The exit status of tobsim itself is not trusted either way: the JSON decides.
"""
import argparse
import json
import subprocess
import sys


def sizes_reports(stdout):
    """{node: [(epoch, {field: value})]} from the "sizes ..." lines of --sizes-every,
    and the set of fields printed in bytes (with a "B" suffix: the last part of a
    "count/bytesB" pair)."""
    out, byte_fields = {}, set()
    for line in stdout.splitlines():
        if not line.startswith("sizes "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        values = {}
        for k, v in fields.items():
            if k in ("seed", "epoch", "node"):
                continue
            for i, part in enumerate(v.split("/")):
                values["%s[%d]" % (k, i)] = int(part.rstrip("B"))
                if part.endswith("B"):
                    byte_fields.add("%s[%d]" % (k, i))
        out.setdefault(fields["node"], []).append((int(fields["epoch"]), values))
    return out, byte_fields


def count_reports(stdout):
    return max((len(r) for r in sizes_reports(stdout)[0].values()), default=0)


def slack(field, rs, byte_fields):
    """16 items: for a count, 16; for the bytes of a "count/bytesB" pair, 16 of the
    largest items (bytes per count) in `rs`. A bytes field with 16 bytes of slack
    failed a clean run on three more requests (about 180 bytes each) in the pool's
    peak of the second half (2026-12-07): noise of one seed's schedule, not growth."""
    if field not in byte_fields:
        return 16
    count = field.rpartition("[")[0] + "[0]"
    per_item = max((v[field] / v[count] for _, v in rs if v.get(count)), default=0)
    return 16 * max(1.0, per_item)


def not_flat(stdout):
    """The fields that grow (second half of the reports above 1.5 x the first half
    + the slack of 16 items), one line each; [] if flat; None if there are too few
    reports."""
    reports, byte_fields = sizes_reports(stdout)
    if not reports or min(len(r) for r in reports.values()) < 4:
        return None
    grown = []
    for node, rs in sorted(reports.items()):
        half = len(rs) // 2
        for field in rs[0][1]:
            first = max(v[field] for _, v in rs[:half])
            second = max(v[field] for _, v in rs[half:])
            if second > 1.5 * first + slack(field, rs[:half], byte_fields):
                grown.append("node %s %s: %d in epochs <= %d, %d by epoch %d" % (
                    node, field, first, rs[half - 1][0], second, rs[-1][0]))
    return grown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["clean", "safe", "violation", "deterministic", "growth"],
                    required=True)
    ap.add_argument("--expect-min", action="append", default=[], metavar="FIELD=N")
    ap.add_argument("--expect-flat", action="store_true")
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
    if a.expect == "growth":
        grown = not_flat(proc.stdout)
        if v != 0:
            print("FAIL: the run itself failed; the self-test needs a clean run")
            return 1
        if not grown:
            print("FAIL: the flatness check did not notice a size that grows")
            return 1
        print("OK: the flatness check caught growth:", grown[0])
        return 0
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
        for item in a.expect_min:
            field, _, least = item.partition("=")
            if res.get(field, 0) < float(least):
                print("FAIL: %s = %s, expected at least %s" % (field, res.get(field), least))
                ok = False
        if a.expect_flat:
            grown = not_flat(proc.stdout)
            if grown is None:
                print("FAIL: --expect-flat needs at least 4 sizes reports per node")
                ok = False
            elif grown:
                print("FAIL: sizes grow with the epoch count:\n  " + "\n  ".join(grown))
                ok = False
            else:
                print("OK: sizes are flat over %d reports" % count_reports(proc.stdout))
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
