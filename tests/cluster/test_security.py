#!/usr/bin/env python3
"""Cluster tests of the transport's security (CTest label `cluster`, docs/security.md):
real tobd processes on 127.0.0.1 and strangers played with pyzmq.

  python3 test_security.py BIN_DIR [TEST ...]

Each test prints one line `test=NAME ok seconds=S` (plus its measurements) or
fails with the reason and keeps the cluster's files in a folder whose path it
prints.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, run_named_tests, free_port_block  # noqa: E402

try:
    import zmq  # noqa: F401
except ImportError:  # python3-zmq (Debian) while python3 is another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import zmq  # noqa: F401,E402


class Failure(Exception):
    pass


class Skip(Exception):
    """The test cannot run here (exit code 77: CTest reports it as skipped)."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def endpoints(c, key):
    """The values of `key` (e.g. "router_endpoint") of every [[node]], in order."""
    out = []
    for line in open(c.cluster_file).read().splitlines():
        line = line.strip()
        if line.startswith(key + " ") or line.startswith(key + "="):
            out.append(line.split("=", 1)[1].strip().strip('"'))
    return out


def enable_metrics(c):
    """Gives every node a metrics_address; returns the ports (node order)."""
    base = free_port_block(c.n, start=31000, stop=32000)
    for i in range(c.n):
        cfg = c.config_path(i)
        text = open(cfg).read()
        open(cfg, "w").write(text.replace('metrics_address = ""',
                                          f'metrics_address = "127.0.0.1:{base + i}"'))
    return [base + i for i in range(c.n)]


def metrics(port):
    """{'name{labels}': value} from a node's /metrics."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def applied(c, i):
    s = c.node_status(i)
    return s["applied"] if s else None


class Writer:
    """A client thread writing fresh keys through `nodes` until stopped."""

    def __init__(self, c, prefix, nodes):
        self.c, self.prefix, self.nodes = c, prefix, nodes
        self.acked, self.errors = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        k = 0
        while not self.stop.is_set():
            node = self.nodes[k % len(self.nodes)]
            r = self.c.tobctl("put", f"{self.prefix}{k}", f"v{k}", "--node", str(node),
                              "--timeout", "20", check=False, timeout=60)
            (self.acked if r.returncode == 0 else self.errors).append(k)
            k += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=90)


# ---- tests -----------------------------------------------------------------------------


def test_squat_recovery(c):
    """A stranger holds a stopped member's ROUTER endpoint with a socket of another
    type (a PUB) for SQUAT_S seconds while the others commit; it leaves, the
    member restarts with its data and must catch up within seconds: the other
    members' point-to-point links to it must recover from the failed handshakes
    (issue 11, finding 12)."""
    squat_s = float(os.environ.get("TOB_SQUAT_S", "40"))
    c.start_all()
    c.wait_serving()
    routers = endpoints(c, "router_endpoint")
    for k in range(3):
        check(c.tobctl("put", f"warm{k}", "x", check=False).returncode == 0, "warm-up put")
    c.stop(3)
    ctx = zmq.Context.instance()
    squatter = ctx.socket(zmq.PUB)
    squatter.setsockopt(zmq.LINGER, 0)
    squatter.bind(routers[3])
    t0 = time.time()
    with Writer(c, "sq", [0, 1, 2]) as w:
        time.sleep(squat_s)
    squatter.close()
    check(len(w.acked) >= 5, f"the three others committed only {len(w.acked)} writes "
                             f"(errors {len(w.errors)}) while node 3 was down")
    target = max(applied(c, i) or 0 for i in range(3))
    c.start(3)
    restarted = time.time()
    c.wait_until(f"node 3 to reach applied epoch {target}",
                 lambda: (applied(c, 3) or 0) >= target, timeout=30, interval=0.5)
    caught_up_s = time.time() - restarted
    print(f"  squat_s={time.time() - t0 - (time.time() - restarted):.0f} "
          f"writes={len(w.acked)} target_epoch={target} caught_up_s={caught_up_s:.1f}")
    check(caught_up_s <= 20, f"node 3 took {caught_up_s:.1f} s to catch up")


def test_stranger_first(c):
    """Strangers connect first to every member endpoint under the names members
    once used as ROUTER identities ("node-0" .. "node-3"), send junk and stay
    connected; a member that was down while the others committed restarts and
    must catch up, which needs the others' point-to-point answers (fetches,
    proofs) to reach it: nothing a stranger claims changes that."""
    c.start_all()
    c.wait_serving()
    for k in range(3):
        check(c.tobctl("put", f"warm{k}", "x", check=False).returncode == 0, "warm-up put")
    c.stop(3)
    time.sleep(2)  # the members drop node 3's old connections first
    ctx = zmq.Context.instance()
    strangers = []
    targets = endpoints(c, "router_endpoint")[:3] + endpoints(c, "client_endpoint")[:3]
    for ep in targets:
        for name in [f"node-{i}" for i in range(c.n)]:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.ROUTING_ID, name.encode())
            s.connect(ep)
            strangers.append(s)
    time.sleep(1)
    for s in strangers:
        for frame in ([b"P", os.urandom(100)], [b"C", os.urandom(50)]):
            try:
                s.send_multipart(frame, zmq.NOBLOCK)
            except zmq.Again:
                pass
    with Writer(c, "sf", [0, 1, 2]) as w:
        time.sleep(8)
    check(len(w.acked) >= 3, f"the others committed only {len(w.acked)} writes")
    target = max(applied(c, i) or 0 for i in range(3))
    c.start(3)
    restarted = time.time()
    c.wait_until(f"node 3 to reach applied epoch {target}",
                 lambda: (applied(c, 3) or 0) >= target, timeout=30, interval=0.5)
    print(f"  strangers={len(strangers)} writes={len(w.acked)} target_epoch={target} "
          f"caught_up_s={time.time() - restarted:.1f}")
    for s in strangers:
        s.close()


class Capture:
    """tcpdump of the loopback traffic on the cluster's ports, into a pcap file."""

    def __init__(self, c, path):
        lo, hi = c.base_port, c.base_port + 3 * c.n - 1
        self.path = path
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-U", "-s", "0", "-Z", "root", "-w", path,
             f"tcp portrange {lo}-{hi}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stderr.readline().decode(errors="replace")  # "listening on lo, ..."
        check("listening on" in line, f"tcpdump did not start: {line}")

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=20)
        return open(self.path, "rb").read()


def capture_put(c, label):
    """Puts a fresh unique value while capturing; returns (value, pcap bytes)."""
    value = f"plaintext-{label}-{secrets.token_hex(12)}"
    cap = Capture(c, os.path.join(c.dir, f"{label}.pcap"))
    try:
        r = c.tobctl("put", f"capture-{label}", value, "--quorum", check=False)
        check(r.returncode == 0, f"put during the capture failed: {r.stdout}{r.stderr}")
        time.sleep(1.5)  # the block and its certificate reach every member
    finally:
        data = cap.stop()
    return value, data


def test_capture(c):
    """tcpdump on loopback during `tobctl put` of a unique value: with Curve no
    plaintext copy of the value (nor its key) is on the wire; with Curve off
    (tobd --test-no-curve, TOBCTL_TEST_NO_CURVE=1) the same capture finds it."""
    import shutil

    if shutil.which("tcpdump") is None or os.geteuid() != 0:
        raise Skip("needs tcpdump (Debian package tcpdump) and root to capture on lo")
    c.start_all()
    c.wait_serving()
    value, data = capture_put(c, "curve")
    check(len(data) > 20000, f"the capture holds only {len(data)} bytes: not the cluster's traffic")
    found = data.count(value.encode())
    print(f"  curve on: captured {len(data)} bytes, copies of the value: {found}")
    check(found == 0, f"{found} plaintext copies of the value with Curve on")
    check(b"capture-curve" not in data, "the key is visible with Curve on")
    c.stop_all()
    os.environ["TOBCTL_TEST_NO_CURVE"] = "1"
    try:
        for i in range(c.n):
            c.start(i, "--test-no-curve")
        c.wait_serving()
        value, data = capture_put(c, "plain")
    finally:
        del os.environ["TOBCTL_TEST_NO_CURVE"]
    found = data.count(value.encode())
    print(f"  curve off: captured {len(data)} bytes, copies of the value: {found}")
    check(found >= 1, "the capture does not show the value even without Curve: the test is blind")


def test_permissions(c):
    """A closed [permissions] table: a client without write permission for a prefix
    gets `forbidden` from every node and the value stays; a client with it
    succeeds; a local read of a key it may not read is refused; an unknown key
    cannot even connect (no status, no local read)."""
    keys = {}
    for name in ("writer", "reader", "stranger"):
        path = os.path.join(c.dir, f"{name}.key")
        r = c.tobctl_raw("keygen", "--out", path, check=True)
        keys[name] = (path, r.stdout.strip())
    perms = os.path.join(c.dir, "permissions.toml")
    open(perms, "w").write(
        "[permissions]\nopen = false\n\n"
        f"[[permissions.client]]\npublic_key = \"{keys['writer'][1]}\"\n"
        "read = [\"app/\"]\nwrite = [\"app/orders/\"]\n\n"
        f"[[permissions.client]]\npublic_key = \"{keys['reader'][1]}\"\n"
        "read = [\"app/\"]\n")
    # The cluster made by main() is open: write this one with the table instead.
    out = c.create("--permissions", perms)
    check("permissions: closed: 2 client key(s)" in out.stdout, f"testnet output: {out.stdout}")
    c.client_key = keys["writer"][0]  # the harness's own status queries use a permitted key
    c.start_all()
    c.wait_serving()

    def as_client(name, *args, check_rc=False):
        return c.tobctl_raw(args[0], "--cluster", c.cluster_file, "--key-file", keys[name][0],
                            *args[1:], check=check_rc, timeout=60)

    r = as_client("writer", "put", "app/orders/1", "v1", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["status"] == "committed",
          f"the writer may write app/orders/: {r.stdout}{r.stderr}")
    # The reader may not write: forbidden whichever node it asks.
    for i in range(c.n):
        r = as_client("reader", "put", "app/orders/1", f"evil{i}", "--node", str(i), "--json")
        out = json.loads(r.stdout) if r.stdout.strip() else {}
        check(r.returncode == 1 and out.get("status") == "forbidden" and "forbidden" in r.stderr,
              f"reader's put via node {i}: rc {r.returncode} {r.stdout}{r.stderr}")
    r = as_client("reader", "put", "app/orders/1", "evil", "--quorum", "--json")
    out = json.loads(r.stdout) if r.stdout.strip() else {}
    check(r.returncode == 1 and out.get("status") == "forbidden" and len(out.get("nodes", [])) >= 2,
          f"t+1 nodes agree on forbidden: {r.stdout}{r.stderr}")
    # The writer may read app/ but not write outside app/orders/.
    r = as_client("writer", "put", "app/other", "x", "--json")
    check(r.returncode == 1 and json.loads(r.stdout)["status"] == "forbidden", f"{r.stdout}")
    c.wait_converged(min_applied=1)
    for i in range(c.n):
        r = as_client("reader", "get", "app/orders/1", "--local", "--node", str(i), "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["value"] == "v1",
              f"value unchanged on node {i}: {r.stdout}{r.stderr}")
    r = as_client("reader", "get", "app/orders/1", "--json")  # an ordered read
    check(r.returncode == 0 and json.loads(r.stdout)["value"] == "v1", f"{r.stdout}{r.stderr}")
    # A local read outside the reader's prefixes is refused by the node.
    r = as_client("reader", "get", "secret/x", "--local", "--node", "0", "--attempt-timeout", "3")
    check(r.returncode == 1 and "forbidden" in r.stderr, f"local read of secret/: {r.stderr}")
    # An unknown key: no connection at all, so no status, no local read, no write.
    r = as_client("stranger", "status", "--json", "--timeout", "2")
    check(r.returncode == 1, f"a stranger got a status: {r.stdout}")
    r = as_client("stranger", "get", "app/orders/1", "--local", "--node", "1",
                  "--attempt-timeout", "2")
    check(r.returncode == 1 and "v1" not in r.stdout, f"a stranger read: {r.stdout}{r.stderr}")
    r = as_client("stranger", "put", "app/orders/1", "x", "--timeout", "3")
    check(r.returncode == 1, "a stranger wrote")
    # The committed log replays under the same permissions (tobd --dump-log checks
    # every epoch's state digest against the COMMITs): the forbidden requests are in it.
    c.stop_all()
    r = subprocess.run([os.path.join(c.bin_dir, "tobd"), "--config", c.config_path(0),
                        "--dump-log"], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"--dump-log failed: {r.stderr[-1500:]}")
    forbidden = r.stdout.count('"status": "forbidden"')
    check(forbidden >= c.n + 2, f"{forbidden} forbidden requests in the dumped log")
    print(f"  writer committed, reader forbidden on every node ({forbidden} in the log), "
          "stranger refused at the handshake")


BENCH_CLIENTS = 8


def closed_cluster_for_bench(c):
    """Rewrites the testnet with closed [permissions] that list the bench's client
    keys (DIR/keys/bench-<c>.key, read and write everything) and nothing else:
    then a stranger is a stranger on every endpoint, the client ROUTER included."""
    key_dir = os.path.join(c.dir, "keys")
    os.makedirs(key_dir, exist_ok=True)
    table = "[permissions]\nopen = false\n"
    for k in range(BENCH_CLIENTS):
        r = c.tobctl_raw("keygen", "--out", os.path.join(key_dir, f"bench-{k}.key"), check=True)
        table += (f"\n[[permissions.client]]\npublic_key = \"{r.stdout.strip()}\"\n"
                  "read = [\"\"]\nwrite = [\"\"]\n")
    perms = os.path.join(c.dir, "bench-permissions.toml")
    open(perms, "w").write(table)
    c.create("--permissions", perms)
    c.client_key = os.path.join(key_dir, "bench-0.key")
    return key_dir


def bench_rate(c, seconds, key_dir):
    """Honest commit rate: `tobctl bench` runs back to back for `seconds`;
    committed requests over the seconds the runs took."""
    committed, took = 0, 0.0
    end = time.time() + seconds
    while time.time() < end:
        r = c.tobctl("bench", "--clients", str(BENCH_CLIENTS), "--txs", "2000", "--size", "100",
                     "--key-dir", key_dir, "--json", check=False, timeout=300)
        check(r.returncode == 0, f"bench failed: {r.stdout}{r.stderr}")
        j = json.loads(r.stdout)
        committed += j["requests_committed"]
        took += j["seconds"]
    return committed / took if took else 0.0


def stranger_targets(c):
    keys = endpoints(c, "curve_key")
    targets = []
    for kind, key in (("pub", "pub_endpoint"), ("router", "router_endpoint"),
                      ("client", "client_endpoint")):
        for i, ep in enumerate(endpoints(c, key)):
            targets.append({"endpoint": ep, "kind": kind, "server_key": keys[i]})
    return targets


def run_stranger(c, seconds, label):
    spec = os.path.join(c.dir, f"stranger-{label}.json")
    json.dump({"targets": stranger_targets(c)}, open(spec, "w"))
    here = os.path.dirname(os.path.abspath(__file__))
    # TOB_STRANGER_NICE=N runs it at that niceness: on one machine its CPU competes
    # with the nodes', which a stranger on another host would not.
    nice = os.environ.get("TOB_STRANGER_NICE")
    argv = (["nice", "-n", nice] if nice else []) + [
        sys.executable, os.path.join(here, "stranger.py"), spec, str(seconds)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def nodes_cpu_s(c):
    """CPU seconds (user + system) the running nodes have used so far."""
    total = 0.0
    for p in c.procs.values():
        if p.poll() is None:
            fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


DECODED = ("tobd_frames_dropped_total", "tobd_client_requests_rejected_total",
           "tobd_envelopes_rejected_total")


def test_stranger_flood(c):
    """A stranger connects to every endpoint of the 4 nodes (member PUB, member
    ROUTER, client ROUTER) and floods for FLOOD_S seconds: the refused handshakes
    are counted on /metrics, none of its frames reaches a decoder, and the honest
    commit rate stays within noise of the same workload without it (both printed).
    The cluster's permissions are closed (only the bench's keys), so the stranger is
    a stranger on the client endpoint too. A short control run with Curve off shows
    the same checks see a stranger."""
    flood_s = float(os.environ.get("TOB_FLOOD_S", "60"))
    key_dir = closed_cluster_for_bench(c)
    ports = enable_metrics(c)
    c.start_all()
    c.wait_serving()
    cpu0 = nodes_cpu_s(c)
    baseline = bench_rate(c, flood_s, key_dir)
    cpu1 = nodes_cpu_s(c)
    stranger = run_stranger(c, flood_s + 2, "curve")
    time.sleep(1)
    cpu2 = nodes_cpu_s(c)
    flooded = bench_rate(c, flood_s, key_dir)
    cpu3 = nodes_cpu_s(c)
    out, err = stranger.communicate(timeout=flood_s + 60)
    check(stranger.returncode == 0, f"stranger failed: {err[-2000:]}")
    counts = json.loads(out.strip().splitlines()[-1])
    time.sleep(1.5)  # the nodes publish their transport counters once a second
    refused = {}
    for i, port in enumerate(ports):
        m = metrics(port)
        for sock in ("member_pub", "member_router", "client"):
            refused[(i, sock)] = m.get(f'tobd_handshakes_refused_total{{socket="{sock}"}}', 0)
        denied = metric_sum({k: v for k, v in m.items() if 'result="denied"' in k},
                            "tobd_zap_requests_total")
        decoded = {name: metric_sum(m, name) for name in DECODED}
        check(all(v == 0 for v in decoded.values()),
              f"node {i} decoded stranger frames: {decoded}")
        check(denied > 0, f"node {i}: no ZAP denial counted")
    check(all(v > 0 for v in refused.values()), f"refused handshakes per node/socket: {refused}")
    check(counts["received"] == 0, f"the stranger received {counts['received']} frames")
    ratio = flooded / baseline if baseline else 0
    print(f"  flood_s={flood_s:.0f} stranger={counts}")
    print(f"  refused_handshakes={ {f'{i}/{s}': int(v) for (i, s), v in refused.items()} }")
    print(f"  baseline_rate={baseline:.0f} req/s flood_rate={flooded:.0f} req/s ratio={ratio:.2f}")
    print(f"  nodes' CPU: {cpu1 - cpu0:.1f} s in the baseline window, {cpu3 - cpu2:.1f} s in the "
          f"flood window; the stranger itself used {counts.get('cpu_s', 0)} s of CPU on this "
          f"machine ({os.cpu_count()} cores)")
    check(ratio >= 0.5, f"the honest commit rate fell to {ratio:.2f} of the baseline")

    # Control: the same stranger against the same cluster without Curve is seen.
    c.stop_all()
    for i in range(c.n):
        c.start(i, "--test-no-curve")
    os.environ["TOBCTL_TEST_NO_CURVE"] = "1"
    try:
        c.wait_serving()
        stranger = run_stranger(c, 6, "plain")
        out, _ = stranger.communicate(timeout=60)
    finally:
        del os.environ["TOBCTL_TEST_NO_CURVE"]
    counts = json.loads(out.strip().splitlines()[-1])
    time.sleep(1.5)
    seen = sum(metric_sum(metrics(p), name) for p in ports for name in DECODED)
    print(f"  control without Curve: stranger received {counts['received']} frames, "
          f"nodes decoded or dropped {seen:.0f} of its frames")
    check(counts["received"] > 0 or seen > 0, "the checks do not see a stranger even without Curve")


def bench_once(c, seconds, ops, inflight):
    """One `tobctl bench` of `seconds` (open permissions, fresh keys): its JSON."""
    r = c.tobctl("bench", "--clients", "4", "--txs", "10000000", "--size", "100",
                 "--ops-per-request", str(ops), "--inflight", str(inflight),
                 "--deadline", str(seconds), "--json", check=False, timeout=seconds + 120)
    # It stops at the deadline with requests left (exit code 1 for "not all
    # committed"): the figure is what committed, over the time it took.
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise Failure(f"bench failed: {r.stdout}{r.stderr}")


def measure_curve_cost(c):
    """The cost of encryption: `tobctl bench` on the same 4-node cluster with Curve
    on and with the test-only switch (`tobd --test-no-curve`, TOBCTL_TEST_NO_CURVE=1),
    alternating ROUNDS times, each on a fresh chain (new testnet, empty data), 4
    clients with INFLIGHT requests in flight each, BENCH_S seconds, OPS operations
    per request (TOB_BENCH_S, TOB_BENCH_OPS, TOB_BENCH_INFLIGHT, TOB_BENCH_ROUNDS;
    30 s, 64, 16, 2). A measurement, not a pass/fail test: it fails only when a
    bench fails or commits nothing."""
    seconds = float(os.environ.get("TOB_BENCH_S", "30"))
    ops = int(os.environ.get("TOB_BENCH_OPS", "64"))
    inflight = int(os.environ.get("TOB_BENCH_INFLIGHT", "16"))
    rounds = int(os.environ.get("TOB_BENCH_ROUNDS", "2"))
    rows = []
    for _ in range(rounds):
        for curve in (True, False):
            c.stop_all()
            c.create()
            for i in range(c.n):
                if curve:
                    c.start(i)
                else:
                    c.start(i, "--test-no-curve")
            if not curve:
                os.environ["TOBCTL_TEST_NO_CURVE"] = "1"
            try:
                c.wait_serving()
                cpu0 = nodes_cpu_s(c)
                j = bench_once(c, seconds, ops, inflight)
                j["nodes_cpu_s"] = nodes_cpu_s(c) - cpu0
            finally:
                os.environ.pop("TOBCTL_TEST_NO_CURVE", None)
            check(j["requests_committed"] > 0, f"nothing committed: {j}")
            rows.append((curve, j))
            print(f"  curve={'on' if curve else 'off'} requests_per_s={j['requests_per_s']} "
                  f"ops_per_s={j['ops_per_s']} p50_ms={j['latency_ms']['p50']} "
                  f"p99_ms={j['latency_ms']['p99']} seconds={j['seconds']} "
                  f"errors={j['errors']} nodes_cpu_s={j['nodes_cpu_s']:.1f} "
                  f"nodes_cpu_ms_per_op={1000 * j['nodes_cpu_s'] / max(j['ops_committed'], 1):.3f}",
                  flush=True)
    for curve in (True, False):
        runs = [j for on, j in rows if on == curve]
        rate = sum(j["ops_per_s"] for j in runs) / len(runs)
        cpu = sum(j["nodes_cpu_s"] for j in runs) / max(sum(j["ops_committed"] for j in runs), 1)
        print(f"  curve={'on' if curve else 'off'} mean_ops_per_s={rate:.0f} "
              f"nodes_cpu_ms_per_op={1000 * cpu:.3f}")


TESTS = {
    "squat_recovery": test_squat_recovery,
    "stranger_first": test_stranger_first,
    "capture": test_capture,
    "permissions": test_permissions,
    "stranger_flood": test_stranger_flood,
    # A measurement (docs/security.md, "Cost"), run by hand, not by CTest.
    "measure_curve_cost": measure_curve_cost,
}


def main():
    names = sys.argv[2:] or list(TESTS)
    return run_named_tests(sys.argv[1], TESTS, names, skip=(Skip,))


if __name__ == "__main__":
    sys.exit(main())
