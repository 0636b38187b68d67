#!/usr/bin/env python3
"""Fault-injection suite on real tobd clusters (docs/faults.md; the rows
and invariants are those of docs/fault-model.md).

  python3 faults.py BIN_DIR SCENARIO [SCENARIO ...]   run named scenarios
  python3 faults.py BIN_DIR default                   the default tier
  python3 faults.py BIN_DIR soak --minutes M          random faults until M minutes pass
  python3 faults.py BIN_DIR list                      scenario names

Each scenario builds a fresh testnet, starts the nodes (each in its own
network namespace when running as root with namespaces available, else on
127.0.0.1 after a printed notice), runs `tobctl workload` while injecting its
fault, heals, checks liveness (I7: new work commits on the honest nodes and
they converge), SIGKILLs every node, dumps every honest node's committed log
(`tobd --dump-log`), and runs the log checker and the linearizability checker
on the client history. It prints exactly one line

  scenario=NAME ops=N acked=N lost=0 violations=0 recovered_s=X

(lost = acknowledged ops missing from the logs; violations = checker
violations + ALARM lines of honest nodes + digest mismatches), then a summary.
A scenario marked expected=violation (byzantine_over_bound) passes only when a
violation IS reported. On failure the cluster files, node logs and the
history are kept in a folder whose path is printed. Teardown (processes by
PID, namespaces, nft rules, tmpfs mounts) runs also on failure.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cluster import Cluster, free_port_block  # noqa: E402
from history import read_history, write_history  # noqa: E402
import lincheck  # noqa: E402
import logcheck  # noqa: E402
import netns as netns_mod  # noqa: E402

KILLS = {"n": 0}  # real SIGKILLs sent in this process


def log(*a):
    print(*a, flush=True)


class ScenarioFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise ScenarioFailure(what)


# ---- the cluster in namespaces ---------------------------------------------------------


class FaultCluster(Cluster):
    """A Cluster whose nodes may run in network namespaces (net = Netns or
    LoopbackNet) and which can also run twins and extra processes."""

    def __init__(self, bin_dir, n, net, workdir, name):
        super().__init__(bin_dir, n=n, workdir=workdir, name=name, log=log)
        self.net = net
        self.in_ns = isinstance(net, netns_mod.Netns)
        self.mounts = []

    # Checkpoints every K epochs, records kept R epochs below the newest servable one.
    # By default nothing is pruned within a scenario, so that the log checker can
    # replay every node's whole log; the snapshot scenarios set small values.
    DEFAULT_PROTOCOL = {"checkpoint_interval": 64, "checkpoint_retention": 100_000_000}

    def write_protocol(self, protocol=None):
        """DEFAULT_PROTOCOL, then `protocol`, over the [protocol] values of the
        cluster file tobctl testnet wrote."""
        text = open(self.cluster_file).read()
        for key, value in {**self.DEFAULT_PROTOCOL, **(protocol or {})}.items():
            text, count = re.subn(rf"(?m)^{key} = \d+$", f"{key} = {value}", text)
            if not count:
                raise RuntimeError(f"{key} is not in the cluster file tobctl testnet wrote")
        open(self.cluster_file, "w").write(text)

    def create(self, protocol=None):
        self.base_port = free_port_block(3 * self.n + 2)
        args = ["testnet", "--nodes", str(self.n), "--dir", self.dir, "--base-port",
                str(self.base_port), "--force"]
        if self.in_ns:
            args += ["--hosts", ",".join(self.net.addr(i) for i in range(self.n))]
        self.tobctl_raw(*args, check=True)
        self.write_protocol(protocol)
        for i in range(self.n):
            cfg = self.config_path(i)
            text = open(cfg).read().replace("testing = false", "testing = true")
            open(cfg, "w").write(text)

    def _popen(self, i, argv, key):
        logf = open(os.path.join(self.dir, f"{key}.log"), "ab")
        logf.write(f"\n==== start {' '.join(argv)} at {time.time():.3f}\n".encode())
        logf.flush()
        node = i
        if self.in_ns:
            argv = ["ip", "netns", "exec", self.net.ns(node)] + argv
        p = subprocess.Popen(argv, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        self.procs[key] = p
        return p

    def start(self, i, *args):
        if i in self.procs and self.procs[i].poll() is None:
            raise RuntimeError(f"node {i} already running")
        argv = [os.path.join(self.bin_dir, "tobd"), "--config", self.config_path(i)]
        argv += list(args) or list(self.extra_args.get(i, []))
        return self._popen(i, argv, i)

    def log_path(self, i):
        return os.path.join(self.dir, f"{i}.log")

    def start_twin(self, i, offset, *args):
        """A second daemon with node i's key (--test-twin OFFSET): a copy of the
        config with its own data dir and high-water file."""
        nd = self.node_dir(i)
        cfg = os.path.join(nd, "twin-config.toml")
        if not os.path.exists(cfg):
            text = open(self.config_path(i)).read()
            text = text.replace('data_dir = "data"', 'data_dir = "twin-data"')
            text = text.replace('key_file = "node.key"',
                                'key_file = "node.key"\nhigh_water_file = "twin-high-water"', 1)
            open(cfg, "w").write(text)
            shutil.copy(os.path.join(nd, "sign-high-water"), os.path.join(nd, "twin-high-water"))
            os.chmod(os.path.join(nd, "twin-high-water"), 0o600)
        argv = [os.path.join(self.bin_dir, "tobd"), "--config", cfg, "--test-twin", str(offset)]
        argv += list(args)
        return self._popen(i, argv, f"twin{i}")

    def sigkill(self, i):
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            return False
        KILLS["n"] += 1
        self.kill(i, signal.SIGKILL)
        return True

    def kill_all(self):
        for k in list(self.procs):
            if self.running(k):
                try:
                    os.killpg(self.procs[k].pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                self.sigkill(k)

    def applied(self, nodes):
        st = {s["node"]: s for s in self.status() if s.get("up", True)}
        return {i: st[i]["applied"] for i in nodes if i in st}

    def status_map(self):
        return {s["node"]: s for s in self.status() if s.get("up", True)}

    def dump_log(self, i, out):
        argv = [os.path.join(self.bin_dir, "tobd"), "--config", self.config_path(i), "--dump-log"]
        with open(out, "w") as f:
            r = subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
        return r

    def mount_tmpfs(self, path, size):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       check=True)
        self.mounts.append(path)

    def unmount_all(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        self.mounts.clear()


def make_network(n, name):
    """A Netns with a prefix (and /24) no other running suite uses, with an
    address on its bridge so that clients in the root namespace reach the nodes;
    or a LoopbackNet (printed notice) when namespaces are unavailable."""
    avail = netns_mod.Netns.available()
    if not avail:
        log(f"notice: network namespaces unavailable ({avail.reason}); running every node on "
            "127.0.0.1 without network partitions")
        return netns_mod.LoopbackNet(n, avail.reason)
    rnd = random.Random(os.getpid() * 7919 + zlib.crc32(name.encode()) + int(time.time()))
    for _ in range(100):
        prefix = "f" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
        k = netns_mod.subnet_octet(prefix)
        r = subprocess.run(["ip", "-4", "addr", "show"], capture_output=True, text=True)
        if f"10.77.{k}." in r.stdout:
            continue
        net = netns_mod.Netns(n, prefix)
        net.open()
        subprocess.run(["ip", "addr", "add", f"10.77.{k}.254/24", "dev", net.bridge], check=True)
        return net
    raise RuntimeError("no free 10.77.K.0/24 subnet for the namespaces")


# ---- a scenario run --------------------------------------------------------------------


class Run:
    def __init__(self, bin_dir, name, n=4, keep_root=None):
        self.bin_dir = bin_dir
        self.name = name
        self.n = n
        self.t = (n - 1) // 3
        self.dir = tempfile.mkdtemp(prefix=f"tobd-faults-{name}-")
        self.net = None
        self.c = None
        self.histories = []
        self.workloads = []
        self.byzantine = set()  # node ids that are not honest
        self.refused = set()  # honest nodes left stopped on purpose (their log may not dump)
        self.notes = []
        self.heal_time = None
        self.kills_at_start = KILLS["n"]

    # ---- setup / teardown
    def setup(self, start=True, args=None, protocol=None):
        self.net = make_network(self.n, self.name)
        self.c = FaultCluster(self.bin_dir, self.n, self.net, os.path.join(self.dir, "cluster"),
                              self.name)
        os.makedirs(self.c.dir, exist_ok=True)
        self.c.create(protocol)
        if start:
            for i in range(self.n):
                self.c.start(i, *(args or {}).get(i, []))
            self.c.wait_serving(timeout=60)

    def teardown(self, keep):
        for w in self.workloads:
            if w["proc"].poll() is None:
                try:
                    os.killpg(w["proc"].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                w["proc"].wait(timeout=10)
        if self.c is not None:
            self.c.log = lambda *a: None
            self.c.teardown(keep=True)
            self.c.unmount_all()
        if self.net is not None:
            self.net.close()
        if keep:
            log(f"kept logs, data and history of {self.name} in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- workload
    def workload(self, seconds, nodes=None, clients=3, keys=4, op_timeout=8.0, ops=None,
                 attempt_timeout=2.0):
        k = len(self.histories)
        path = os.path.join(self.dir, f"history-{k}.jsonl")
        argv = [os.path.join(self.bin_dir, "tobctl"), "workload", "--cluster", self.c.cluster_file,
                "--out", path, "--clients", str(clients), "--keys", str(keys), "--seconds",
                str(seconds), "--op-timeout", str(op_timeout), "--attempt-timeout",
                str(attempt_timeout), "--client-prefix", f"w{k}c"]
        if ops is not None:
            argv += ["--ops", str(ops)]
        if nodes is not None:
            argv += ["--node-set", ",".join(str(i) for i in nodes)]
        out = open(os.path.join(self.dir, f"workload-{k}.out"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        w = {"proc": p, "path": path, "out": out.name}
        self.histories.append(path)
        self.workloads.append(w)
        return w

    def wait_workloads(self, timeout=120):
        deadline = time.time() + timeout
        for w in self.workloads:
            left = max(1, deadline - time.time())
            try:
                w["proc"].wait(timeout=left)
            except subprocess.TimeoutExpired:
                os.killpg(w["proc"].pid, signal.SIGKILL)
                w["proc"].wait()
                raise ScenarioFailure(f"workload {w['path']} did not finish")
            check(w["proc"].returncode == 0,
                  f"workload failed: {open(w['out']).read()[-2000:]}")

    def history(self):
        ops = []
        for p in self.histories:
            if os.path.exists(p):
                ops.extend(read_history(p))
        for i, o in enumerate(ops):
            o.id = i
        return ops

    # ---- helpers
    def honest(self):
        return [i for i in range(self.n) if i not in self.byzantine]

    def up_honest(self):
        return [i for i in self.honest() if self.c.running(i)]

    def stalled(self, nodes, seconds):
        """True when no new epoch commits on `nodes` for `seconds`: the highest
        applied epoch does not move (a lagging node may still catch up to it)."""
        a = self.c.applied(nodes)
        time.sleep(seconds)
        b = self.c.applied(nodes)
        return max(b.values(), default=0) <= max(a.values(), default=0), a, b

    def heal(self):
        self.net.heal()
        self.heal_time = time.monotonic()

    # ---- the end of every scenario
    def finish(self, expect_violation=False, pruned=False):
        """pruned: the nodes pruned their archives (the snapshot scenarios), so
        `tobd --dump-log` cannot replay them from epoch 1: the log checker is left
        out, and the run is judged by the state digests agreeing at one applied
        epoch, the liveness workload, the linearizability checker on the client
        history and the ALARM scan."""
        self.wait_workloads()
        if self.heal_time is None:
            self.heal_time = time.monotonic()
        nodes = self.up_honest()
        if not expect_violation:
            check(len(nodes) >= self.n - self.t, f"only {nodes} honest nodes up at the end")
        live_start = time.monotonic()
        # I7 liveness: fresh work commits on the honest nodes, and they converge.
        recovered = None
        if not expect_violation:
            w = self.workload(60, nodes=nodes, clients=2, keys=4, ops=16, op_timeout=45)
            self.wait_workloads(timeout=120)
            live = read_history(w["path"])
            ok = sum(1 for o in live if o.result == "ok")
            check(ok == len(live) and ok > 0,
                  f"liveness: {ok}/{len(live)} ops committed after heal on nodes {nodes}")
            try:
                st = self.c.wait_converged(nodes=nodes, timeout=90)
            except TimeoutError as e:
                raise ScenarioFailure(f"liveness: honest nodes did not converge: {e}")
            recovered = time.monotonic() - max(self.heal_time, live_start)
            digests = {st[i]["state_digest"] for i in nodes}
            check(len(digests) == 1, f"state digests differ: {digests}")
        else:
            try:
                self.c.wait_converged(nodes=nodes, timeout=20)
            except TimeoutError:
                pass
        # Crash everything (real SIGKILLs), then dump the honest logs.
        self.c.kill_all()
        logs = {}
        if pruned:
            self.notes.append("archives pruned: no log dumps, the log checker is left out")
        for i in ([] if pruned else self.honest()):
            out = os.path.join(self.dir, f"dump-node{i}.jsonl")
            r = self.c.dump_log(i, out)
            if r.returncode != 0:
                if i in self.refused:
                    self.notes.append(f"node {i} log not dumped (refused data): "
                                      f"{r.stderr.strip()[-200:]}")
                    continue
                raise ScenarioFailure(f"--dump-log node {i} failed ({r.returncode}): "
                                      f"{r.stderr[-1500:]}")
            logs[f"node{i}"] = logcheck.load_log(out)
        ops = self.history()
        write_history(os.path.join(self.dir, "history.jsonl"), ops)
        rep = logcheck.check_logs(logs, None if pruned else ops)
        lost = sum(1 for c, _ in rep.violations if c == "lost")
        violations = [f"{c}: {m}" for c, m in rep.violations if c != "lost"]
        lin = lincheck.check_history(ops)
        for r in lin.failures:
            violations.append(f"lincheck: key {r.key}: {r.explain(20)}")
        if lin.status == "unknown":
            self.notes.append("lincheck: search budget exceeded for "
                              + ",".join(r.key for r in lin.unknown))
        alarms = []
        for i in self.honest():
            for line in self.c.log_text(i).splitlines():
                if "ALARM" in line:
                    alarms.append(f"node {i}: {line.strip()}")
        violations += alarms
        acked = sum(1 for o in ops if o.result == "ok")
        rec = "-" if recovered is None else f"{recovered:.1f}"
        line = (f"scenario={self.name} ops={len(ops)} acked={acked} "
                f"lost={'-' if pruned else lost} "
                f"violations={len(violations)} recovered_s={rec}")
        if expect_violation:
            line += " expected=violation"
        return {"line": line, "lost": lost, "violations": violations, "report": rep,
                "logs": logs, "ops": ops}


# ---- raw ZeroMQ peer ---------------------------------------------------------------------

try:
    import zmq  # noqa: F401
except ImportError:  # python3-zmq (Debian) while python3 is another interpreter (pyenv)
    for _p in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(os.path.join(_p, "zmq")) and _p not in sys.path:
            sys.path.append(_p)


def member_curve(c, node, member):
    """CurveZMQ settings to reach `node` as `member` (a Byzantine member with its
    real key: a stranger cannot complete a handshake, docs/security.md):
    (node's server key, member's public key, member's secret key), raw bytes."""
    fields = {}
    for line in open(os.path.join(c.node_dir(member), "curve.key")).read().splitlines():
        name, _, value = line.partition(" ")
        fields[name] = value
    server = [line.split("=", 1)[1].strip().strip('"')
              for line in open(c.cluster_file).read().splitlines()
              if line.strip().startswith("curve_key")][node]
    return bytes.fromhex(server), bytes.fromhex(fields["public"]), bytes.fromhex(fields["secret"])


def set_curve(s, curve):
    if curve:
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = curve


def zmq_capture(endpoint, seconds, limit=2000, curve=None):
    """Frames of a node's PUB flood: list of (header, envelope). `curve`: see
    member_curve."""
    import zmq

    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.SUB)
    set_curve(s, curve)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    frames = []
    deadline = time.time() + seconds
    while time.time() < deadline and len(frames) < limit:
        if s.poll(100):
            parts = s.recv_multipart()
            if len(parts) == 2:
                frames.append((parts[0], parts[1]))
    s.close()
    return frames


def zmq_send_router(endpoint, frames, maxmsg=None, curve=None):
    """Sends each frame list (without identity) on a fresh DEALER to a node's
    ROUTER; returns the number sent. `curve`: see member_curve."""
    import zmq

    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    set_curve(s, curve)
    s.setsockopt(zmq.LINGER, 200)
    s.setsockopt(zmq.SNDHWM, 100000)
    s.setsockopt(zmq.SNDTIMEO, 2000)
    s.connect(endpoint)
    time.sleep(0.2)
    sent = 0
    for parts in frames:
        try:
            s.send_multipart(parts)
            sent += 1
        except zmq.Again:
            break
    time.sleep(0.3)
    s.close()
    return sent


def cluster_endpoints(c):
    text = open(c.cluster_file).read()
    pubs, routers = [], []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("pub_endpoint"):
            pubs.append(line.split("=", 1)[1].strip().strip('"'))
        elif line.startswith("router_endpoint"):
            routers.append(line.split("=", 1)[1].strip().strip('"'))
    return pubs, routers


def mutate(env, rnd):
    b = bytearray(env)
    kind = rnd.randrange(4)
    if kind == 0 and len(b) > 70:  # a byte of the signature (the tail)
        b[-1 - rnd.randrange(64)] ^= 1 << rnd.randrange(8)
    elif kind == 1 and len(b) > 8:  # a byte near the front (sender id, epoch, kind)
        b[rnd.randrange(min(8, len(b)))] ^= 0xFF
    elif kind == 2:  # a random byte anywhere
        b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
    else:  # truncation
        b = b[: rnd.randrange(1, max(2, len(b)))]
    return bytes(b)


# ---- scenarios ---------------------------------------------------------------------------


def sc_crash_stop(r, n=4):
    """Row 1: SIGKILL t nodes, no restart; the others keep committing."""
    r.setup()
    victims = list(range(r.n - r.t, r.n))
    r.workload(12, nodes=list(range(r.n - r.t)))
    time.sleep(3)
    for v in victims:
        r.c.sigkill(v)
    r.wait_workloads()
    stalled, a, b = r.stalled(list(range(r.n - r.t)), 0.1)
    w = r.workload(5, nodes=list(range(r.n - r.t)))
    r.wait_workloads()
    ok = sum(1 for o in read_history(w["path"]) if o.result == "ok")
    check(ok > 0, "no commits with t nodes crashed")


def sc_crash_stop_n7(r):
    sc_crash_stop(r)


def sc_beyond_bound(r):
    """Row 2: t+1 nodes crashed: no commits, no violation; a restart resumes progress."""
    r.setup()
    r.workload(4)
    r.wait_workloads()
    r.c.sigkill(2)
    r.c.sigkill(3)
    r.workload(8, nodes=[0, 1], op_timeout=5)
    time.sleep(2)
    stalled, a, b = r.stalled([0, 1], 5)
    check(stalled, f"nodes 0,1 committed with only 2 of 4 up: {a} -> {b}")
    r.wait_workloads()
    r.c.start(2)
    r.heal_time = time.monotonic()
    r.workload(6, nodes=[0, 1, 2], op_timeout=20)
    r.wait_workloads()
    r.c.start(3)


def sc_crash_restart(r):
    """Row 3: repeated SIGKILL + restart of random nodes under load; one
    reformat (data dir deleted, key and high-water mark kept)."""
    r.setup()
    rnd = random.Random()
    r.workload(30, clients=3)
    t_end = time.time() + 26
    kills = 0
    while time.time() < t_end:
        time.sleep(rnd.uniform(0.8, 1.8))
        v = rnd.randrange(r.n)
        r.c.sigkill(v)
        kills += 1
        if kills == 5:
            shutil.rmtree(r.c.data_dir(v), ignore_errors=True)
            r.notes.append(f"reformatted node {v}")
        time.sleep(rnd.uniform(0.3, 1.2))
        r.c.start(v)
    r.heal_time = time.monotonic()


def sc_failpoint(r):
    """Row 4: --test-crash-at N (abort() at the N-th durable write) on one
    node at several N, restarted each time; plus SIGKILLs under write load."""
    r.setup()
    r.workload(34, clients=3)
    for n_at in (1, 3, 17, 60, 150):
        v = 1 + n_at % 3
        r.c.sigkill(v)
        r.c.start(v, "--test-crash-at", str(n_at))
        p = r.c.procs[v]
        try:
            p.wait(timeout=15)
            r.notes.append(f"node {v} --test-crash-at {n_at}: exit {p.returncode}")
        except subprocess.TimeoutExpired:
            r.c.sigkill(v)
            r.notes.append(f"node {v} --test-crash-at {n_at}: no abort within 15 s, SIGKILL")
        r.c.start(v)
        time.sleep(1.5)
    r.heal_time = time.monotonic()


def corrupt_dir(path, rnd, mode):
    """Flips bytes in (mode=flip) or truncates (mode=truncate) the data files."""
    done = []
    files = []
    for root, _, names in os.walk(path):
        for nm in names:
            p = os.path.join(root, nm)
            if os.path.isfile(p) and os.path.getsize(p) > 0 and nm != "LOCK":
                files.append(p)
    files.sort(key=lambda p: -os.path.getsize(p))
    for p in files[:6]:
        size = os.path.getsize(p)
        if mode == "truncate":
            cut = min(size, rnd.randint(1, 1 << 20))
            os.truncate(p, size - cut)
            done.append(f"truncate {os.path.relpath(p, path)} -{cut}")
        else:
            with open(p, "r+b") as f:
                for _ in range(8):
                    off = rnd.randrange(size)
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ (1 << rnd.randrange(8))]))
            done.append(f"flip {os.path.relpath(p, path)}")
    return done


def sc_corrupt_files(r):
    """Row 5: flip bytes in / truncate the data files of t node(s) while
    stopped; the restarted node refuses with a message or runs (voting or as a
    non-voting follower), never a violation."""
    r.setup()
    rnd = random.Random()
    r.workload(30, nodes=[0, 1, 2])
    v = 3
    for mode in ("flip", "truncate"):
        time.sleep(5)
        r.c.sigkill(v)
        what = corrupt_dir(r.c.data_dir(v), rnd, mode)
        r.notes.append(f"node {v}: " + "; ".join(what))
        r.c.start(v)
        time.sleep(4)
        if not r.c.running(v):
            text = r.c.log_text(v)[-3000:]
            r.notes.append(f"node {v} refused after {mode} (exit {r.c.procs[v].returncode})")
            check(any(w in text.lower() for w in ("corrupt", "checksum", "refus", "damaged",
                                                  "invalid", "error", "truncat")),
                  f"node {v} exited without a clear message:\n{text}")
            # Recover as an operator would: a fresh data dir (key and mark kept).
            shutil.rmtree(r.c.data_dir(v), ignore_errors=True)
            r.c.start(v)
    r.wait_workloads()
    r.heal_time = time.monotonic()


def sc_disk_full(r):
    """Row 6: node 2's data dir on a 64 MiB tmpfs; fill it: the node fails
    stop (exit 3); free space, restart: it catches up. (20 MiB was too small once
    epochs got faster: RocksDB's WAL may reach 16 MiB before a flush, and the
    final --dump-log could not even reopen the database.)"""
    r.setup(start=False)
    v = 2
    try:
        r.c.mount_tmpfs(r.c.data_dir(v), "64m")
    except (subprocess.CalledProcessError, OSError) as e:
        # Not root, or a container without mount rights: say so; the scenario then
        # only runs its workload and the common checks (like partition without netns).
        log(f"NOTICE: disk_full: cannot mount a tmpfs ({e}); the full disk is NOT injected")
        r.notes.append("tmpfs unavailable: full disk not injected")
        r.setup_started = True
        for i in range(r.n):
            r.c.start(i)
        r.c.wait_serving(timeout=60)
        r.workload(10, nodes=[0, 1, 3])
        r.wait_workloads()
        return
    for i in range(r.n):
        r.c.start(i)
    r.c.wait_serving(timeout=60)
    r.workload(30, nodes=[0, 1, 3])
    time.sleep(3)
    filler = os.path.join(r.c.data_dir(v), "filler")
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=80"],
                   capture_output=True)
    p = r.c.procs[v]
    try:
        p.wait(timeout=40)
    except subprocess.TimeoutExpired:
        raise ScenarioFailure(f"node {v} kept running 40 s with a full disk")
    check(p.returncode == 3, f"node {v} exit code {p.returncode} on a full disk (want 3):\n"
          + r.c.log_text(v)[-1500:])
    r.notes.append(f"node {v} fail-stopped with exit 3 on ENOSPC")
    os.remove(filler)
    r.c.start(v)
    r.heal_time = time.monotonic()
    r.wait_workloads()


def sc_partition(r):
    """Row 7: isolate one node; split 2/2 (no commits); asymmetric 0->1; heal."""
    r.setup()
    if not r.c.in_ns:
        r.notes.append("no namespaces: partitions skipped")
        r.workload(5)
        return
    r.net.isolate(3)
    r.workload(8, nodes=[0, 1, 2])
    r.wait_workloads()
    a3 = r.c.applied([0, 1, 2])
    r.heal()
    time.sleep(3)
    r.net.partition([[0, 1], [2, 3]])
    time.sleep(2)
    r.workload(7, op_timeout=5)
    stalled, a, b = r.stalled([0, 1, 2, 3], 4)
    check(stalled, f"a 2/2 split committed: {a} -> {b}")
    r.wait_workloads()
    r.heal()
    time.sleep(2)
    r.net.asymmetric(0, 1)
    r.net.asymmetric(2, 3)
    r.workload(8)
    r.wait_workloads()
    r.heal()


def message_faults(r, args):
    r.setup(args={i: args + ["--test-seed", str(100 + i)] for i in range(r.n)})
    r.workload(15)
    r.wait_workloads()


def sc_loss(r):
    """Row 8: every node drops 20% of received peer frames."""
    message_faults(r, ["--test-drop", "0.2"])


def sc_duplicate(r):
    """Row 9: every node receives 30% of peer frames twice."""
    message_faults(r, ["--test-duplicate", "0.3"])


def sc_reorder(r):
    """Row 10: every node delays 30% of peer frames by up to 300 ms (reordering)."""
    message_faults(r, ["--test-delay", "0.3", "--test-delay-ms", "300"])


def sc_twins(r):
    """Row 11: a second daemon with node 3's key (--test-twin)."""
    r.setup()
    r.byzantine = {3}
    r.c.start_twin(3, 1000)
    r.workload(18, nodes=[0, 1, 2])
    r.wait_workloads()
    faults = sum(r.c.log_text(i).count("fault by node 3") for i in (0, 1, 2))
    st = r.c.status_map()
    counted = sum(st[i].get("faults", 0) for i in (0, 1, 2) if i in st)
    r.notes.append(f"'fault by node 3' log lines on honest nodes: {faults}; faults counted: "
                   f"{counted}")


def sc_byzantine_over_bound(r):
    """Row 12: t+1 = 2 Byzantine nodes (2 and 3 run --test-byzantine collude: each
    shows one version of its block to node 0 and another to node 1 and both SEEN
    every version, so both versions reach q = 3 SEENs): the checkers must report a
    violation or an honest node must raise an ALARM."""
    r.setup(args={2: ["--test-byzantine", "collude"], 3: ["--test-byzantine", "collude"]})
    r.byzantine = {2, 3}
    r.workload(20, nodes=[0, 1], op_timeout=6)
    r.wait_workloads()


BYZ_MODES = ["equivocate", "conflicting-seen", "lying-aba", "bad-coin", "silent", "replay"]


def sc_byzantine_modes(r):
    """Row 14: node 3 runs each --test-byzantine mode in turn."""
    r.setup(args={3: ["--test-byzantine", BYZ_MODES[0]]})
    r.byzantine = {3}
    r.workload(6 * len(BYZ_MODES) + 2, nodes=[0, 1, 2])
    for k, mode in enumerate(BYZ_MODES):
        if k:
            r.c.sigkill(3)
            r.c.start(3, "--test-byzantine", mode)
        time.sleep(6)
    r.wait_workloads()
    faults = sum(r.c.log_text(i).count("fault by node 3") for i in (0, 1, 2))
    r.notes.append(f"'fault by node 3' log lines on honest nodes: {faults}")


# ---- checkpoints, pruning and snapshot transfer -------------------------------------------

# Small enough that a scenario prunes within a minute of load, large enough that the
# history workload's epochs are still on disk at the end (the log checker matches
# every acknowledged op to the dumped logs).
SNAPSHOT_PROTOCOL = {"checkpoint_interval": 16, "checkpoint_retention": 192}


def background_load(r, seconds):
    """tobctl bench (not part of the history): pushes the cluster past the retention."""
    argv = [os.path.join(r.bin_dir, "tobctl"), "bench", "--cluster", r.c.cluster_file,
            "--clients", "4", "--txs", "100000000", "--ops-per-request", "16", "--keys", "2000",
            "--deadline", str(seconds)]
    out = open(os.path.join(r.dir, "bench.out"), "w")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return p


def stop_load(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait(timeout=10)


def wait_pruned_beyond(r, nodes, epoch, timeout):
    """Until every node of `nodes` has pruned its records below `epoch` (or further)."""
    def ok():
        st = r.c.status_map()
        return all(st.get(i, {}).get("pruned_below", 0) > epoch for i in nodes)
    r.c.wait_until(f"nodes {nodes} pruning beyond epoch {epoch}", ok, timeout=timeout,
                   interval=1.0)


def wait_snapshot_rejoin(r, node, t0, timeout=90):
    """Until `node` installed a snapshot, is voting and has reached the others'
    applied epoch of the moment it started; returns the seconds since t0."""
    target = max(r.c.applied([i for i in r.honest() if i != node]).values())

    def ok():
        st = r.c.status_map().get(node)
        return (st and st["voting"] and not st["snapshot"]["active"] and st["applied"] >= target
                and "snapshot installed" in r.c.log_text(node))
    r.c.wait_until(f"node {node} installing a snapshot and voting", ok, timeout=timeout)
    return time.monotonic() - t0


def sc_wipe_under_load(r):
    """Row 3 (a reformat) beyond the retention: node 3's data dir is deleted under
    load after the others pruned their early records; it installs a snapshot from
    its peers and votes again (key and high-water mark intact)."""
    r.setup(protocol=SNAPSHOT_PROTOCOL)
    load = background_load(r, 300)
    try:
        wait_pruned_beyond(r, [0, 1, 2, 3], 0, timeout=200)
        r.notes.append(f"applied before the wipe: {r.c.applied(r.honest())}")
        r.workload(10, clients=2)
        time.sleep(2)
        r.c.sigkill(3)
        shutil.rmtree(r.c.data_dir(3), ignore_errors=True)
        t0 = time.monotonic()
        r.c.start(3)
        secs = wait_snapshot_rejoin(r, 3, t0)
        r.notes.append(f"wiped node 3 voting again after {secs:.1f} s")
    finally:
        stop_load(load)
    r.heal_time = time.monotonic()


def sc_beyond_retention(r):
    """A node down while the others commit more than the retention: on restart
    (data dir intact) it cannot catch up epoch by epoch and installs a snapshot."""
    r.setup(protocol=SNAPSHOT_PROTOCOL)
    r.workload(3, clients=2)
    r.wait_workloads()
    r.c.sigkill(3)
    behind = r.c.applied([0]).get(0, 0)
    load = background_load(r, 300)
    try:
        wait_pruned_beyond(r, [0, 1, 2], behind + 1, timeout=200)
        r.notes.append(f"applied before the restart: {r.c.applied([0, 1, 2])}")
        r.workload(10, clients=2, nodes=[0, 1, 2])
        t0 = time.monotonic()
        r.c.start(3)
        secs = wait_snapshot_rejoin(r, 3, t0)
        r.notes.append(f"node 3 ({behind} applied, peers pruned beyond it) voting again after "
                       f"{secs:.1f} s")
    finally:
        stop_load(load)
    r.heal_time = time.monotonic()


def sc_junk_peer(r):
    """Rows 13/15: a raw ZeroMQ peer with a member's Curve key (node 3's: a
    stranger cannot complete the handshake at all, docs/security.md) sends
    garbage, oversized frames, forged and mutated envelopes, replays, and another
    cluster's frames to every node's ROUTER ('P' channel); nodes keep running and
    committing."""
    r.setup()
    pubs, routers = cluster_endpoints(r.c)
    r.workload(25)
    captured = zmq_capture(pubs[0], 3, curve=member_curve(r.c, 0, 3))
    check(len(captured) > 10, f"captured only {len(captured)} frames from node 0")
    # Frames of another cluster (another chain id): one node of a second testnet.
    other = FaultCluster(r.bin_dir, 4, netns_mod.LoopbackNet(4), os.path.join(r.dir, "other"),
                         "other")
    os.makedirs(other.dir, exist_ok=True)
    foreign = []
    try:
        other.create()
        other.start(0)
        opubs, _ = cluster_endpoints(other)
        foreign = zmq_capture(opubs[0], 3, curve=member_curve(other, 0, 1))
    finally:
        other.teardown(keep=True)
    rnd = random.Random()
    maxmsg = 16 << 20
    sent = 0
    for rounds in range(3):
        for i, ep in enumerate(routers):
            junk = [[b"P", os.urandom(rnd.randrange(1, 600))] for _ in range(300)]
            junk += [[b"P"], [b"P", b"", b""], [b"X", b"hello"], [b"", b""],
                     [b"P", b"\xdd\xff\x00\x00\x00"], [b"P", b"\x91" * 10000]]
            junk += [[b"P", env] for _, env in captured]  # replays
            junk += [[b"P", mutate(env, rnd)] for _, env in captured]  # forged / mutated
            junk += [[b"P", env] for _, env in foreign]  # another cluster
            junk += [[b"C", os.urandom(200)] for _ in range(50)]  # client plane garbage
            curve = member_curve(r.c, i, 3 if i != 3 else 2)
            sent += zmq_send_router(ep, junk, curve=curve)
            sent += zmq_send_router(ep, [[b"P", b"\x00" * (maxmsg + 1024)]],
                                    curve=curve)  # oversized
        time.sleep(2)
    r.notes.append(f"sent {sent} junk frames ({len(captured)} captured, {len(foreign)} foreign)")
    r.wait_workloads()
    for i in range(r.n):
        check(r.c.running(i), f"node {i} died on junk input: {r.c.log_text(i)[-1500:]}")


def sc_far_future(r):
    """Row 16: node 3 falls behind (stopped); valid signed envelopes of epochs
    far beyond its window (captured from node 0's flood) are flooded at it when
    it restarts; it must not crash, and must catch up."""
    r.setup()
    pubs, routers = cluster_endpoints(r.c)
    r.c.sigkill(3)
    r.workload(12, nodes=[0, 1, 2])
    time.sleep(5)
    captured = zmq_capture(pubs[0], 6, limit=5000, curve=member_curve(r.c, 0, 1))
    r.wait_workloads()
    check(len(captured) > 10, f"captured only {len(captured)} frames")
    r.c.start(3)
    time.sleep(0.5)
    sent = 0
    for _ in range(5):
        sent += zmq_send_router(routers[3], [[b"P", env] for _, env in captured],
                                curve=member_curve(r.c, 3, 1))
    r.notes.append(f"flooded node 3 with {sent} far-future frames")
    r.heal_time = time.monotonic()
    time.sleep(2)
    check(r.c.running(3), "node 3 died under the far-future flood")


def sc_slow_node(r):
    """Row 17: SIGSTOP node 2 for 10 s under load; the others commit; SIGCONT; it catches up."""
    r.setup()
    r.workload(16, nodes=[0, 1, 3])
    time.sleep(2)
    os.killpg(r.c.procs[2].pid, signal.SIGSTOP)
    a = r.c.applied([0, 1, 3])
    time.sleep(10)
    b = r.c.applied([0, 1, 3])
    os.killpg(r.c.procs[2].pid, signal.SIGCONT)
    r.heal_time = time.monotonic()
    check(all(b.get(i, 0) > a.get(i, 0) for i in (0, 1, 3)),
          f"others did not commit while node 2 was stopped: {a} -> {b}")
    r.wait_workloads()


def sc_operator_errors(r):
    """Row 19: a second daemon on node 0's data dir refuses (lock); a key file
    at mode 0644 refuses."""
    r.setup()
    r.workload(14, nodes=[0, 1, 2])
    time.sleep(1)
    # Second daemon, same config (same data dir): must refuse, clearly.
    argv = [os.path.join(r.bin_dir, "tobd"), "--config", r.c.config_path(0)]
    if r.c.in_ns:
        argv = ["ip", "netns", "exec", r.net.ns(0)] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    text = (p.stdout + p.stderr).lower()
    check(p.returncode != 0, "a second daemon on one data dir started")
    check("lock" in text or "already" in text or "in use" in text,
          f"no clear message for a second daemon: {text[-800:]}")
    r.notes.append("second daemon: " + (p.stdout + p.stderr).strip().splitlines()[-1][:160])
    check(r.c.running(0), "the first daemon died")
    # Key file at 0644.
    r.c.sigkill(3)
    key = os.path.join(r.c.node_dir(3), "node.key")
    os.chmod(key, 0o644)
    r.c.start(3)
    try:
        r.c.procs[3].wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise ScenarioFailure("tobd started with a 0644 key file")
    text = r.c.log_text(3).lower()
    check(r.c.procs[3].returncode != 0 and ("0600" in text or "mode" in text
                                            or "permission" in text),
          f"no clear refusal of a 0644 key: {text[-800:]}")
    r.notes.append("0644 key refused (exit %d)" % r.c.procs[3].returncode)
    os.chmod(key, 0o600)
    r.c.start(3)
    r.heal_time = time.monotonic()
    r.wait_workloads()


SCENARIOS = {
    "crash_stop": (sc_crash_stop, 4, False),
    "beyond_bound": (sc_beyond_bound, 4, False),
    "crash_restart": (sc_crash_restart, 4, False),
    "failpoint": (sc_failpoint, 4, False),
    "corrupt_files": (sc_corrupt_files, 4, False),
    "disk_full": (sc_disk_full, 4, False),
    "partition": (sc_partition, 4, False),
    "loss": (sc_loss, 4, False),
    "duplicate": (sc_duplicate, 4, False),
    "reorder": (sc_reorder, 4, False),
    "twins": (sc_twins, 4, False),
    "byzantine_over_bound": (sc_byzantine_over_bound, 4, True),
    "byzantine_modes": (sc_byzantine_modes, 4, False),
    "junk_peer": (sc_junk_peer, 4, False),
    "far_future": (sc_far_future, 4, False),
    "slow_node": (sc_slow_node, 4, False),
    "operator_errors": (sc_operator_errors, 4, False),
    "crash_stop_n7": (sc_crash_stop_n7, 7, False),
    "wipe_under_load": (sc_wipe_under_load, 4, False),
    "beyond_retention": (sc_beyond_retention, 4, False),
}
DEFAULT_TIER = list(SCENARIOS)


PRUNED_SCENARIOS = {"wipe_under_load", "beyond_retention"}


def run_scenario(bin_dir, name, keep_always=False):
    fn, n, expect_violation = SCENARIOS[name]
    r = Run(bin_dir, name, n=n)
    t0 = time.monotonic()
    passed = False
    line = f"scenario={name} ops=0 acked=0 lost=? violations=? recovered_s=- FAILED"
    try:
        fn(r)
        res = r.finish(expect_violation=expect_violation, pruned=name in PRUNED_SCENARIOS)
        line = res["line"]
        if expect_violation:
            passed = len(res["violations"]) > 0 or res["lost"] > 0
            if not passed:
                r.notes.append("expected a violation with more than t Byzantine nodes; none "
                               "was reported")
        else:
            passed = res["lost"] == 0 and not res["violations"]
        for v in res["violations"][:15]:
            log(f"  violation: {v}")
        for (c, m) in res["report"].violations:
            if c == "lost":
                log(f"  lost: {m}")
                break
    except Exception as e:  # noqa: BLE001
        r.notes.append(f"FAILED: {e}")
        traceback.print_exc(file=sys.stdout)
    finally:
        secs = time.monotonic() - t0
        for note in r.notes:
            log(f"  note: {note}")
        if not passed:
            line = line if "FAILED" in line else line + " FAILED"
        log(line)
        try:
            r.teardown(keep=not passed or keep_always)
        except Exception as e:  # noqa: BLE001
            log(f"  teardown error: {e}")
            passed = False
    return passed, line, secs


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    bin_dir = argv[1]
    names = argv[2:]
    if names == ["list"]:
        print("\n".join(SCENARIOS))
        return 0
    if names[0] == "soak":
        minutes = float(names[2]) if len(names) > 2 and names[1] == "--minutes" else 60.0
        return soak(bin_dir, minutes)
    if names == ["default"]:
        names = DEFAULT_TIER
    for nm in names:
        if nm not in SCENARIOS:
            print(f"unknown scenario {nm}; known: {' '.join(SCENARIOS)}")
            return 2
    return summarize([run_scenario(bin_dir, nm) for nm in names])


def summarize(results):
    failed = [line for ok, line, _ in results if not ok]
    total = sum(s for _, _, s in results)
    log(f"summary: scenarios={len(results)} passed={len(results) - len(failed)} "
        f"failed={len(failed)} sigkills={KILLS['n']} seconds={total:.0f}")
    for line in failed:
        log(f"  failed: {line}")
    return 1 if failed else 0


def soak(bin_dir, minutes):
    """Random scenarios (excluding the expected-violation one) until time is up."""
    rnd = random.Random()
    names = [n for n, (_, _, ev) in SCENARIOS.items() if not ev]
    end = time.time() + minutes * 60
    results = []
    rounds = 0
    while time.time() < end:
        rounds += 1
        nm = rnd.choice(names)
        log(f"soak round {rounds}: {nm}")
        results.append(run_scenario(bin_dir, nm))
    return summarize(results)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
