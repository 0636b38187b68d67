#!/usr/bin/env python3
"""Paired comparison of two tobd builds on fresh 4-node clusters.

    python3 bench/compare.py OLD_BIN_DIR NEW_BIN_DIR [--pairs 2] [--rate 183]
                             [--only peak64,peak1,half,low] [--seconds S] [--own-client]

For each pair and scenario both builds run one after the other (the order
alternates between pairs), with the load generator of NEW_BIN_DIR for both (with
--own-client each build's own tobctl, for changes to the client side), so a
machine whose speed drifts affects both sides alike. Scenarios (docs/performance.md,
"The targets"): the 64-operation peak (16 clients x 16 in flight, 30 s), the
single-operation peak (16 clients x 128 in flight, 30 s), an open loop at --rate
requests of 64 operations per second (30 s; pick half of the peak), and one request
in flight (20 s). One JSON line per run: ops/s, requests/s, p50, p90, p99, cluster
CPU per committed op (us), the load generator's CPU per op (us) and bytes written
per op (cluster).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--rate", type=float, default=183.0,
                    help="open-loop requests/s of 64 operations (half of the peak)")
    ap.add_argument("--only", default="",
                    help="comma-separated scenarios to run (peak64,peak1,half,low; default all)")
    ap.add_argument("--own-client", action="store_true",
                    help="each build runs its own tobctl as the load generator")
    ap.add_argument("--seconds", type=float, default=0,
                    help="length of every run (default: 30 s peak and half, 20 s low)")
    a = ap.parse_args()
    run_bench.log = lambda *args, **kw: None
    # Both builds use the new build's tobctl as the load generator, unless --own-client.
    work = tempfile.mkdtemp(prefix="tobd-compare-")
    bins = {}
    for label, src in (("old", a.old), ("new", a.new)):
        d = os.path.join(work, label)
        os.makedirs(d)
        shutil.copy2(os.path.join(src, "tobd"), d)
        shutil.copy2(os.path.join(src if a.own_client else a.new, "tobctl"), d)
        bins[label] = d
    scenarios = [
        ("peak64", ["--clients", "16", "--inflight", "16", "--size", "100",
                    "--ops-per-request", "64"], 30),
        ("peak1", ["--clients", "16", "--inflight", "128", "--size", "100"], 30),
        ("half", ["--clients", "16", "--size", "100", "--ops-per-request", "64",
                  "--rate", str(a.rate)], 30),
        ("low", ["--clients", "1", "--inflight", "1", "--size", "100"], 20),
    ]
    only = set(filter(None, a.only.split(",")))
    scenarios = [(n, args, a.seconds or secs) for n, args, secs in scenarios
                 if not only or n in only]
    try:
        for pair in range(a.pairs):
            for name, args, seconds in scenarios:
                order = ["old", "new"] if pair % 2 == 0 else ["new", "old"]
                for label in order:
                    r = run_bench.bench_scenario(bins[label], name, args, seconds, drain=5)
                    b = r["bench"] or {}
                    ops = max(1, b.get("ops_committed", 0))
                    lat = b.get("latency_ms", {})
                    print(json.dumps({
                        "pair": pair, "scenario": name, "build": label,
                        "ops_per_s": b.get("ops_per_s"), "requests_per_s": b.get("requests_per_s"),
                        "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
                        "cpu_us_per_op": round(r["cluster_cpu_s"] / ops * 1e6, 1),
                        "loadgen_us_per_op": round(r["loadgen_cpu_s"] / ops * 1e6, 1),
                        "bytes_written_per_op": r["cluster_write_bytes"] // ops,
                    }), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
