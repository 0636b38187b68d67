#!/usr/bin/env python3
"""Where a node's disk writes go under the 64-operation load (docs/performance.md).

Starts a fresh 4-node cluster (tests/cluster/cluster.py), runs the peak64 load of
`make bench` (tobctl bench: 16 clients x 8 requests of 64 PUTs of 100-byte values
in flight) for --seconds, and reports per node and per committed operation, as a
multiple of the value size:

  write_bytes  /proc/<pid>/io of the tobd process (the figure `make bench` reports)
  wal          RocksDB WAL files (*.log in <data>/db): the largest size each file
               reached, sampled every 0.1 s
  flush/compaction, per column family
               SST (and blob) files RocksDB wrote, from the EVENT_LOG_v1 lines of
               its LOG (table_file_creation / blob_file_creation, by job reason)
  snapshots    checkpoint snapshot files (<data>/snapshots), largest size seen
  records by type, kv
               what NodeStorage appended (tobd_storage_appended_bytes_total on
               /metrics), before RocksDB's own overhead

    bench/disk_breakdown.py [build/bin] --seconds 30 [--base-port 36000] [--json OUT]
"""

import argparse
import glob
import json
import os
import re
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from cluster import Cluster, free_port_block  # noqa: E402
import run_bench  # noqa: E402

NODES = 4


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class FileSampler(threading.Thread):
    """Largest size seen of every file under the data dirs (WAL, snapshots)."""

    def __init__(self, dirs, interval=0.1):
        super().__init__(daemon=True)
        self.dirs, self.interval = dirs, interval
        self.sizes = {}
        self.stop = threading.Event()
        self.baseline = None

    def sample(self):
        out = {}
        for i, d in self.dirs.items():
            for path in glob.glob(os.path.join(d, "db", "*.log")) + \
                    glob.glob(os.path.join(d, "snapshots", "*")):
                try:
                    size = os.path.getsize(path)
                except OSError:
                    continue
                # <epoch>.snap.tmp is renamed to <epoch>.snap when complete: one file.
                name = path[:-len(".tmp")] if path.endswith(".tmp") else path
                out[(i, name)] = max(out.get((i, name), 0), size)
        return out

    def run(self):
        self.baseline = self.sample()
        while not self.stop.is_set():
            for k, v in self.sample().items():
                if v > self.sizes.get(k, 0):
                    self.sizes[k] = v
            time.sleep(self.interval)

    def written(self, node, kind):
        total = 0
        for (i, path), size in self.sizes.items():
            if i != node:
                continue
            is_wal = path.endswith(".log") and os.path.basename(os.path.dirname(path)) == "db"
            if (kind == "wal") != is_wal:
                continue
            total += size - self.baseline.get((i, path), 0)
        return total


EVENT = re.compile(r"EVENT_LOG_v1 (\{.*\})\s*$")


def rocksdb_events(db_dir, since_us):
    """(flush bytes, compaction bytes) per column family from the LOG files."""
    jobs, files = {}, []
    for path in sorted(glob.glob(os.path.join(db_dir, "LOG*"))):
        with open(path, errors="replace") as f:
            for line in f:
                m = EVENT.search(line)
                if not m:
                    continue
                try:
                    ev = json.loads(m.group(1))
                except json.JSONDecodeError:
                    continue
                if ev.get("time_micros", 0) < since_us:
                    continue
                kind = ev.get("event")
                if kind == "flush_started":
                    jobs[ev["job"]] = "flush"
                elif kind == "compaction_started":
                    jobs[ev["job"]] = "compaction"
                elif kind in ("table_file_creation", "blob_file_creation"):
                    size = ev.get("file_size", ev.get("total_blob_bytes", 0))
                    files.append((ev.get("job"), ev.get("cf_name", "?"), kind, size))
    out = {}
    for job, cf, kind, size in files:
        why = jobs.get(job, "other")
        key = f"{why}:{cf}" + (":blob" if kind == "blob_file_creation" else "")
        out[key] = out.get(key, 0) + size
    return out


def metrics_port(cluster, i):
    text = open(cluster.config_path(i)).read()
    m = re.search(r'^\s*metrics_address\s*=\s*"[^"]*:(\d+)"', text, re.M) or \
        re.search(r'^\s*(?:http|metrics)[a-z_]*\s*=\s*"[^"]*:(\d+)"', text, re.M)
    return int(m.group(1)) if m else None


def appended_bytes(cluster, i):
    port = metrics_port(cluster, i)
    if not port:
        return {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return {}
    out = {}
    for line in text.decode().splitlines():
        m = re.match(r'tobd_storage_appended_bytes_total\{kind="([^"]+)"\}\s+(\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin", nargs="?", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--base-port", type=int, default=None)
    ap.add_argument("--json", default=None, help="write the figures here too")
    ap.add_argument("--checkpoint-interval", type=int, default=None,
                    help="the cluster's checkpoint_interval (default: tobctl testnet's)")
    args = ap.parse_args()
    if args.base_port:
        os.environ["TOB_TEST_PORTS"] = f"{args.base_port}-{args.base_port + 199}"

    c = Cluster(args.bin, n=NODES, name="disk", testing=False, log=log)
    c.create()
    if args.checkpoint_interval:
        text = open(c.cluster_file).read()
        text = re.sub(r"(?m)^checkpoint_interval = \d+$",
                      f"checkpoint_interval = {args.checkpoint_interval}", text)
        open(c.cluster_file, "w").write(text)
    while True:  # /metrics, for the appended bytes by record type
        mport = free_port_block(NODES)
        if mport + NODES <= c.base_port or mport >= c.base_port + 3 * NODES:
            break
    for i in range(NODES):
        text = open(c.config_path(i)).read()
        text = re.sub(r'^metrics_address\s*=.*$', f'metrics_address = "127.0.0.1:{mport + i}"',
                      text, flags=re.M)
        open(c.config_path(i), "w").write(text)
    c.start_all()
    try:
        c.wait_serving(timeout=60)
        time.sleep(1)
        sampler = FileSampler({i: c.data_dir(i) for i in range(NODES)})
        sampler.start()
        time.sleep(0.3)
        since_us = int(time.time() * 1e6)
        app0 = {i: appended_bytes(c, i) for i in range(NODES)}
        snap0 = run_bench.snapshot(c)
        result, rc, _ = run_bench.run_tobctl_bench(
            c, ["--clients", 16, "--size", args.size, "--ops-per-request", 64, "--inflight", 8,
                "--duration", args.seconds, "--drain", 10], args.seconds + 200)
        snap1 = run_bench.snapshot(c)
        app1 = {i: appended_bytes(c, i) for i in range(NODES)}
        time.sleep(0.3)
        sampler.stop.set()
        sampler.join()
        if not result or not result.get("ops_committed"):
            log(f"no result (exit {rc})")
            return 1
        ops = result["ops_committed"]
        unit = ops * args.size
        rows = {}
        for i in range(NODES):
            r = {"write_bytes": snap1[i]["write_bytes"] - snap0[i]["write_bytes"],
                 "wal": sampler.written(i, "wal"),
                 "snapshots": sampler.written(i, "snap")}
            r.update(rocksdb_events(os.path.join(c.data_dir(i), "db"), since_us))
            for k, v in app1[i].items():
                r["appended:" + k] = v - app0[i].get(k, 0)
            rows[i] = r
        keys = sorted({k for r in rows.values() for k in r},
                      key=lambda k: (k != "write_bytes", k.split(":")[0], k))
        cpu = sum(snap1[i]["cpu_s"] - snap0[i]["cpu_s"] for i in range(NODES))
        print(f"{ops} ops committed in {args.seconds:g} s ({result['ops_per_s']:.0f} ops/s), "
              f"cluster CPU {1e6 * cpu / ops:.1f} us/op; "
              f"bytes per node and op / {args.size}-byte value:")
        print(f"{'':34}" + "".join(f"{'node' + str(i):>9}" for i in range(NODES)) + f"{'mean':>9}")
        for k in keys:
            vals = [rows[i].get(k, 0) / unit for i in range(NODES)]
            print(f"{k:34}" + "".join(f"{v:9.2f}" for v in vals) + f"{sum(vals) / NODES:9.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"ops": ops, "seconds": args.seconds, "size": args.size,
                           "cluster_cpu_s": cpu,
                           "bench": result, "nodes": rows}, f, indent=1)
    finally:
        c.stop_all()
        c.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
