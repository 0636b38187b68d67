#!/usr/bin/env python3
"""Checkpoints, pruning and snapshot transfer on a real 4-node tobd cluster
(docs/protocol.md, "Checkpoints"; docs/operations.md, "Checkpoints and snapshots").

  python3 snapshot.py BIN_DIR wipe_under_load     a node's data dir deleted under load
                                                  (key and mark kept): it installs a
                                                  snapshot and votes again
  python3 snapshot.py BIN_DIR corrupt_peer        the same with one peer serving corrupt
                                                  chunks (--test-byzantine corrupt-snapshot):
                                                  the chunks are rejected, counted and
                                                  logged, the transfer completes
  python3 snapshot.py BIN_DIR export_import       tobd --export-snapshot on a stopped node,
                                                  --import-snapshot into a wiped one
  python3 snapshot.py BIN_DIR measure [--minutes M] [--full]
                                                  sustained load: data-dir size and RSS of
                                                  every node each minute; then a wipe and
                                                  the time until the node votes again, the
                                                  bytes transferred and the state size
                                                  (--full: 20 minutes, then until 1,000,000
                                                  ops are committed)

Ports come from TOB_TEST_PORTS (tests/cluster/cluster.py). Each test prints one
line per figure it measured and exits 0 on success.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cluster import Cluster, free_port_block  # noqa: E402


def log(*a):
    print(*a, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- the cluster -----------------------------------------------------------------------


class SnapCluster(Cluster):
    """A testnet with small checkpoint parameters and a metrics port per node."""

    def setup(self, interval, retention, views_always=True):
        self.create()
        # The tests' states are small, under the size from which a node keeps its
        # checkpoints as views (linked table files) rather than files: make every
        # checkpoint a view, so that transfers, restarts and exports run on views.
        # measure keeps the daemon's default.
        if views_always:
            self.extra_args = {i: ["--test-view-min-state-bytes", "0"] for i in range(self.n)}
        text = open(self.cluster_file).read()
        text = re.sub(r"(?m)^checkpoint_interval = \d+$", f"checkpoint_interval = {interval}",
                      text)
        if re.search(r"(?m)^checkpoint_retention = ", text):
            text = re.sub(r"(?m)^checkpoint_retention = \d+$",
                          f"checkpoint_retention = {retention}", text)
        else:
            text = text.replace(f"checkpoint_interval = {interval}\n",
                                f"checkpoint_interval = {interval}\n"
                                f"checkpoint_retention = {retention}\n")
        open(self.cluster_file, "w").write(text)
        # Not inside the block the testnet's ports came from (they are not bound yet).
        while True:
            self.metrics_base = free_port_block(self.n)
            if (self.metrics_base + self.n <= self.base_port
                    or self.metrics_base >= self.base_port + 4 * self.n):
                break
        for i in range(self.n):
            cfg = self.config_path(i)
            text = open(cfg).read()
            line = f'metrics_address = "127.0.0.1:{self.metrics_base + i}"\n'
            if "metrics_address" in text:
                text = re.sub(r'(?m)^#?\s*metrics_address = .*\n', line, text)
            else:
                text = line + text
            open(cfg, "w").write(text)

    def metrics(self, i):
        url = f"http://127.0.0.1:{self.metrics_base + i}/metrics"
        try:
            body = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            return {}
        out = {}
        for line in body.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = out.get(name, 0.0) + float(value)
            except ValueError:
                pass
        return out

    def metric(self, i, name):
        total = 0.0
        for k, v in self.metrics(i).items():
            if k == name or k.startswith(name + "{"):
                total += v
        return total


def dir_bytes(path):
    """Bytes of the files under path, each file counted once however many
    names it has (a checkpoint view's table files are hard links to the
    database's, docs/operations.md)."""
    total = 0
    seen = set()
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def rss_bytes(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def bench(c, seconds, clients=4, keys=100000, ops_per_request=64, size=100, inflight=None):
    """tobctl bench in the background for `seconds` (64-op requests of 100-byte values
    over `keys` keys by default)."""
    argv = [os.path.join(c.bin_dir, "tobctl"), "bench", "--cluster", c.cluster_file,
            "--clients", str(clients), "--txs", "100000000", "--size", str(size),
            "--ops-per-request", str(ops_per_request), "--keys", str(keys), "--deadline",
            str(seconds), "--json"]
    if inflight:
        argv += ["--inflight", str(inflight)]
    out = open(os.path.join(c.dir, f"bench-{int(time.time())}.out"), "w")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    p.out_path = out.name
    out.close()
    return p


def stop_bench(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def status_map(c):
    return {s["node"]: s for s in c.status() if s.get("up", True)}


def wait_pruned(c, node, timeout):
    return c.wait_until(f"node {node} pruning",
                        lambda: (status_map(c).get(node) or {}).get("pruned_below", 0) > 0,
                        timeout=timeout, interval=1.0)


def wipe_and_rejoin(c, victim, timeout=120, args=()):
    """Deletes the victim's data dir (key and mark kept), restarts it, and returns
    (seconds until it votes again, the installed line of its log)."""
    c.kill(victim)
    before = max(s["applied"] for s in status_map(c).values())
    shutil.rmtree(c.data_dir(victim))
    t0 = time.monotonic()
    c.start(victim, *args)

    def rejoined():
        s = status_map(c).get(victim)
        if not s or not s["voting"] or s["snapshot"]["active"]:
            return None
        return s if s["applied"] >= before else None

    last_progress = None
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = rejoined()
        if st:
            break
        s = status_map(c).get(victim)
        if s and s["snapshot"]["active"]:
            snap = s["snapshot"]
            line = (f"progress: {snap['percent']}% {snap['bytes_done']}/{snap['bytes_total']} "
                    f"bytes eta {snap['eta_s']} s")
            if line != last_progress:
                log(f"  node {victim} {line}")
                last_progress = line
        time.sleep(0.2)
    check(st, f"node {victim} did not vote again within {timeout} s")
    secs = time.monotonic() - t0
    text = c.log_text(victim)
    installed = [ln for ln in text.splitlines() if "snapshot installed" in ln]
    return secs, installed, st


def installed_figures(line):
    m = re.search(r"checkpoint (\d+) \((\d+) entries, ([\d.]+) MB\) in ([\d.]+) s", line)
    if not m:
        return None
    return {"epoch": int(m.group(1)), "entries": int(m.group(2)), "mb": float(m.group(3)),
            "secs": float(m.group(4))}


# ---- tests -----------------------------------------------------------------------------


def test_wipe_under_load(c, byzantine=None, victim_args=(), until=None, attempts=1):
    """Wipes node 3 under load until it installed a snapshot and `until(victim)` holds
    (at most `attempts` wipes); returns the victim."""
    c.setup(interval=16, retention=32)
    for i in range(c.n):
        if byzantine and i in byzantine:
            c.start(i, "--test-byzantine", byzantine[i])
        else:
            c.start(i)
    c.wait_serving()
    load = bench(c, 120, keys=5000, ops_per_request=16)
    try:
        wait_pruned(c, 0, timeout=90)
        st = status_map(c)
        log(f"before the wipe: applied {st[0]['applied']}, checkpoint {st[0]['checkpoint']}, "
            f"pruned below {st[0]['pruned_below']}")
        victim = 3
        for attempt in range(1, attempts + 1):
            secs, installed, vst = wipe_and_rejoin(c, victim, args=victim_args)
            check(installed, f"node {victim} rejoined without installing a snapshot")
            fig = installed_figures(installed[-1])
            log(f"wipe {attempt}: node {victim} voting again after {secs:.1f} s "
                f"(applied {vst['applied']}); {installed[-1].strip()}")
            if fig:
                log(f"snapshot: checkpoint {fig['epoch']}, {fig['entries']} entries, "
                    f"{fig['mb']:.2f} MB transferred")
            # The gauges are refreshed once a second: wait for the install to show
            # before reading any other counter of the transfer.
            installs = c.metric(victim, "tobd_snapshots_installed_total")
            deadline = time.time() + 5
            while installs < 1 and time.time() < deadline:
                time.sleep(0.2)
                installs = c.metric(victim, "tobd_snapshots_installed_total")
            check(installs >= 1, f"/metrics of node {victim}: tobd_snapshots_installed_total "
                  f"{installs}")
            if until is None or until(victim):
                break
        return victim
    finally:
        stop_bench(load)
        # After the load, every node converges on one state.
        c.wait_converged(timeout=120)


def test_corrupt_peer(c):
    # 16 KiB chunks: a transfer of about 1 MB is spread over every peer that offers,
    # so the corrupting peer is asked for some of it (with 1 MiB chunks the first
    # honest source could serve the whole state before node 1's offer arrived;
    # with 8 KiB chunks, beside a busy loop, the chunks' round trips through the
    # loaded peers made a transfer take 100 s). Which offers arrive before the
    # transfer ends is still a race the test does not control: with 64 KiB chunks
    # it lost it once in CI; with 16 KiB chunks 1 wipe in 7 on an idle machine did
    # not ask node 1, and in one make test all 3 wipes failed so beside another
    # cluster. So the victim is wiped again, up to five times, until node 1 was
    # asked; a node that never rejects a corrupt chunk fails all five.
    def rejected_some(victim):
        n = c.metric(victim, "tobd_snapshot_chunks_rejected_total")
        log(f"tobd_snapshot_chunks_rejected_total on node {victim}: {n:.0f}")
        return n >= 1

    victim = test_wipe_under_load(c, byzantine={1: "corrupt-snapshot"},
                                  victim_args=("--test-snapshot-chunk-bytes", "16384"),
                                  until=rejected_some, attempts=5)
    check(rejected_some(victim), "no chunk of the corrupting peer was rejected in 5 wipes")
    text = c.log_text(victim)
    lines = [ln for ln in text.splitlines() if "fault by node 1" in ln and "snapshot chunk" in ln]
    check(lines, "no log line names the corrupting peer")
    log(f"log: {lines[0].strip()}")
    st = status_map(c)[victim]
    check(st["snapshot"]["chunks_rejected"] >= 1, f"tobctl status: {st['snapshot']}")


def tobd(c, i, *args):
    argv = [os.path.join(c.bin_dir, "tobd"), "--config", c.config_path(i)] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_export_import(c):
    c.setup(interval=16, retention=32)
    c.start_all()
    c.wait_serving()
    load = bench(c, 30, keys=2000, ops_per_request=16)
    try:
        c.wait_until("a stable checkpoint on node 0",
                     lambda: (status_map(c).get(0) or {}).get("checkpoint", 0) > 0, timeout=60)
    finally:
        stop_bench(load)
    c.wait_converged(timeout=60)
    c.stop(0)
    snap = os.path.join(c.dir, "backup.snap")
    r = tobd(c, 0, "--export-snapshot", snap)
    log(r.stdout.strip())
    check(r.returncode == 0, f"export failed ({r.returncode}): {r.stderr[-2000:]}")
    check(os.path.getsize(snap) > 0, "empty snapshot file")
    # A damaged copy is refused.
    bad = os.path.join(c.dir, "bad.snap")
    data = bytearray(open(snap, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(bad, "wb").write(data)
    c.stop(3)
    shutil.rmtree(c.data_dir(3))
    r = tobd(c, 3, "--import-snapshot", bad)
    check(r.returncode != 0, "a damaged snapshot file was imported")
    log(f"damaged file refused: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
    r = tobd(c, 3, "--import-snapshot", snap)
    log(r.stdout.strip())
    check(r.returncode == 0, f"import failed ({r.returncode}): {r.stderr[-2000:]}")
    c.start(0)
    c.start(3)
    c.wait_serving()
    for k in range(5):
        c.tobctl("put", f"after-import-{k}", "v")
    st = c.wait_converged(timeout=90)
    check(st[3]["voting"], "the imported node votes")


# ---- measurements ----------------------------------------------------------------------


def measure(c, minutes, target_ops):
    c.setup(interval=64, retention=256, views_always=False)
    c.start_all()
    c.wait_serving()
    # A bounded number of requests in flight (4 clients x 4 x 64 ops): what the
    # cluster commits steadily, not a backlog that grows for the whole run.
    load = bench(c, int(minutes * 60) + 3600, keys=100000, ops_per_request=64, inflight=4)
    rows = []
    t0 = time.monotonic()
    try:
        for minute in range(1, int(minutes) + 1):
            while time.monotonic() < t0 + 60 * minute:
                time.sleep(1)
            row = {"minute": minute}
            st = status_map(c)
            for i in range(c.n):
                row[f"dir{i}"] = dir_bytes(c.node_dir(i) + "/data")
                db = os.path.join(c.node_dir(i), "data", "db")
                row[f"wal{i}"] = sum(os.path.getsize(os.path.join(db, f))
                                     for f in os.listdir(db) if f.endswith(".log"))
                # Table files and blob files (block envelopes and large records).
                row[f"sst{i}"] = sum(os.path.getsize(os.path.join(db, f))
                                     for f in os.listdir(db) if f.endswith((".sst", ".blob")))
                row[f"rss{i}"] = rss_bytes(c.procs[i].pid)
            ops = c.metric(0, "tobd_operations_committed_total")
            row["ops"] = int(ops)
            row["applied"] = st.get(0, {}).get("applied", 0)
            rows.append(row)
            log(f"minute {minute}: ops {row['ops']} applied {row['applied']} " + " ".join(
                f"node{i} dir {row[f'dir{i}'] / 1e6:.1f} MB (wal {row[f'wal{i}'] / 1e6:.0f}, "
                f"sst+blob {row[f'sst{i}'] / 1e6:.0f}) rss {row[f'rss{i}'] / 1e6:.1f} MB"
                for i in range(c.n)))
        first = rows[min(4, len(rows) - 1)] if len(rows) >= 5 else rows[0]
        base = "minute 5" if len(rows) >= 5 else "minute 1"
        for i in range(c.n):
            dirs = [r[f"dir{i}"] / max(1, first[f"dir{i}"]) for r in rows[rows.index(first):]]
            rss = [r[f"rss{i}"] / max(1, first[f"rss{i}"]) for r in rows[rows.index(first):]]
            log(f"node{i}: data dir {min(dirs):.2f}..{max(dirs):.2f} x, RSS {min(rss):.2f}.."
                f"{max(rss):.2f} x of {base}")
        # The figures the issue asks for: minutes 5, 10, 15 and 20 against minute 5.
        if len(rows) >= 5:
            marks = [r for r in rows if r["minute"] in (5, 10, 15, 20)]
            for i in range(c.n):
                d = [r[f"dir{i}"] / max(1, rows[4][f"dir{i}"]) for r in marks]
                m = [r[f"rss{i}"] / max(1, rows[4][f"rss{i}"]) for r in marks]
                ok = all(0.75 <= x <= 1.25 for x in d + m)
                log(f"node{i} at minutes {','.join(str(r['minute']) for r in marks)}: data dir "
                    + " ".join(f"{x:.2f}" for x in d) + " x, RSS " + " ".join(f"{x:.2f}" for x in m)
                    + " x of minute 5: " + ("within" if ok else "OUTSIDE") + " +-25 %")
        while target_ops and c.metric(0, "tobd_operations_committed_total") < target_ops:
            time.sleep(5)
        ops = int(c.metric(0, "tobd_operations_committed_total"))
        log(f"committed ops before the wipe: {ops}")
        secs, installed, vst = wipe_and_rejoin(c, 3, timeout=600)
        fig = installed_figures(installed[-1]) if installed else None
        state = dir_bytes(c.node_dir(0) + "/data/snapshots")
        log(f"wipe: node 3 voting again after {secs:.1f} s (applied {vst['applied']}); "
            + (f"snapshot of checkpoint {fig['epoch']}: {fig['entries']} entries, "
               f"{fig['mb']:.1f} MB transferred, installed in {fig['secs']:.1f} s"
               if fig else "no snapshot installed (caught up with proofs)")
            + f"; checkpoint views and files on node 0: {state / 1e6:.1f} MB (a view shares its "
              "files with the database)")
        print(json.dumps({"rows": rows, "wipe_s": secs, "snapshot": fig,
                          "ops_before_wipe": ops}), flush=True)
    finally:
        stop_bench(load)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    bin_dir, what = argv[1], argv[2]
    c = SnapCluster(bin_dir, n=4, name=f"snapshot-{what}", log=log)
    ok = False
    try:
        if what == "wipe_under_load":
            test_wipe_under_load(c)
        elif what == "corrupt_peer":
            test_corrupt_peer(c)
        elif what == "export_import":
            test_export_import(c)
        elif what == "measure":
            full = "--full" in argv
            minutes = 20 if full else 5
            if "--minutes" in argv:
                minutes = float(argv[argv.index("--minutes") + 1])
            measure(c, minutes, 1_000_000 if full else 0)
        else:
            print(__doc__)
            return 2
        ok = True
        log(f"{what}: ok")
    except Exception as e:  # noqa: BLE001
        log(f"{what}: FAILED: {e}")
        for i in range(c.n):
            tail = c.log_text(i)[-1500:]
            log(f"--- node {i} log tail ---\n{tail}")
    finally:
        c.teardown(keep=not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
