"""A local tobd cluster driven from Python: testnet, processes, tobctl.

Used by the cluster tests (tests/cluster/test_daemon.py), the fault-injection
suite and the demo. Every process is started in its own process group and is
killed by PID in teardown(), also when a test fails; a cluster's files live in
one work directory that teardown() removes unless keep=True (failing tests keep
it and print its path).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


# The first line of a report by AddressSanitizer, LeakSanitizer, UBSan
# ("runtime error:") or ThreadSanitizer ("WARNING: ThreadSanitizer: data race").
SANITIZER_REPORT = re.compile(r"(?:ERROR|WARNING): \w*Sanitizer|runtime error:|SUMMARY: \w*Sanitizer")


def sanitizer_report(text):
    """The line of `text` where a sanitizer report starts, or None."""
    m = SANITIZER_REPORT.search(text or "")
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start:end if end >= 0 else len(text)]


def port_range(start, stop):
    """TOB_TEST_PORTS=LO-HI narrows the ports test clusters use (e.g. to give runs
    that share a machine disjoint ranges); else [start, stop)."""
    spec = os.environ.get("TOB_TEST_PORTS", "")
    if spec:
        lo, hi = (int(x) for x in spec.split("-", 1))
        return lo, hi + 1
    return start, stop


def free_port_block(count, start=21000, stop=31000):
    """A base port P such that P .. P+count-1 are all free on 127.0.0.1.

    Below the kernel's ephemeral range (32768-60999 here, plus room for a twin at
    +1000): a node started late must not find its port taken by the local end of
    some client's outgoing connection (seen once in cluster_late_start)."""
    import random

    start, stop = port_range(start, stop)
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        base = rnd.randrange(start, stop - count)
        ok = True
        for p in range(base, base + count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free port block")


class Cluster:
    def __init__(self, bin_dir, n=4, workdir=None, name="cluster", testing=True, log=print):
        self.bin_dir = os.path.abspath(bin_dir)
        self.n = n
        self.t = (n - 1) // 3
        self.name = name
        self.own_workdir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix=f"tobd-{name}-")
        self.procs = {}
        self.extra_args = {}
        self.testing = testing
        self.log = log
        self.base_port = None
        self.client_key = os.path.join(self.dir, "client.key")

    # ---- setup ---------------------------------------------------------------------

    def create(self, *testnet_args):
        """Writes the testnet (node i: PUB P+2i, member ROUTER P+2i+1, client ROUTER
        P+2n+i); `testnet_args` go to tobctl testnet (e.g. --permissions FILE)."""
        self.base_port = free_port_block(3 * self.n)
        out = self.tobctl_raw(
            "testnet", "--nodes", str(self.n), "--dir", self.dir, "--base-port",
            str(self.base_port), "--force", *testnet_args, check=True)
        if self.testing:
            for i in range(self.n):
                cfg = self.config_path(i)
                text = open(cfg).read().replace("testing = false", "testing = true")
                open(cfg, "w").write(text)
        return out

    def config_path(self, i):
        return os.path.join(self.dir, f"node{i}", "config.toml")

    def set_limits(self, limits):
        """Sets `key = value` for each of `limits` in every node's config: the line
        tobctl testnet wrote, or a new one at the top of its [limits] table."""
        for i in range(self.n):
            path = self.config_path(i)
            text = open(path).read()
            for key, value in limits.items():
                line = f"{key} = {value}"
                text, hits = re.subn(rf"(?m)^{key} = .*$", line, text)
                if not hits:
                    text = text.replace("[limits]\n", f"[limits]\n{line}\n", 1)
            open(path, "w").write(text)

    def node_dir(self, i):
        return os.path.join(self.dir, f"node{i}")

    def data_dir(self, i):
        return os.path.join(self.dir, f"node{i}", "data")

    def log_path(self, i):
        return os.path.join(self.dir, f"node{i}.log")

    @property
    def cluster_file(self):
        return os.path.join(self.dir, "cluster.toml")

    # ---- processes -------------------------------------------------------------------

    def start(self, i, *args):
        if i in self.procs and self.procs[i].poll() is None:
            raise RuntimeError(f"node {i} already running")
        argv = [os.path.join(self.bin_dir, "tobd"), "--config", self.config_path(i)]
        argv += list(args) or list(self.extra_args.get(i, []))
        logf = open(self.log_path(i), "ab")
        logf.write(f"\n==== start {' '.join(argv)} at {time.time():.3f}\n".encode())
        logf.flush()
        self.procs[i] = subprocess.Popen(argv, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        return self.procs[i]

    def start_all(self):
        for i in range(self.n):
            self.start(i)

    def running(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    def stop(self, i):
        self.kill(i, signal.SIGTERM)
        return self.procs[i].returncode if i in self.procs else None

    def stop_all(self):
        for i in list(self.procs):
            self.stop(i)

    def teardown(self, keep=False):
        for i, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        if keep:
            self.log(f"kept cluster files in {self.dir}")
        elif self.own_workdir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- tobctl ---------------------------------------------------------------------

    def tobctl_raw(self, *args, check=False, timeout=120):
        argv = [os.path.join(self.bin_dir, "tobctl")] + [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        report = sanitizer_report(r.stderr)
        if report:  # a sanitizer build: a report in tobctl fails the test whatever it returned
            raise RuntimeError(f"{' '.join(argv)}: sanitizer report: {report}\n{r.stderr[-3000:]}")
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def tobctl(self, *args, check=True, timeout=120):
        """A client command against this cluster (adds --cluster and --key-file)."""
        cmd = args[0]
        rest = list(args[1:])
        extra = ["--cluster", self.cluster_file]
        if cmd in ("put", "get", "del", "cas", "status"):
            extra += ["--key-file", self.client_key]
        return self.tobctl_raw(cmd, *extra, *rest, check=check, timeout=timeout)

    def client_json(self, *args, check=True, timeout=120):
        r = self.tobctl(*args, "--json", check=check, timeout=timeout)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def status(self, i=None, timeout=30):
        args = ["status", "--json"]
        if i is not None:
            args += ["--node", str(i)]
        r = self.tobctl(*args, check=False, timeout=timeout)
        if r.returncode != 0 and not r.stdout.strip():
            return []
        try:
            data = json.loads(r.stdout)
        except json.JSONDecodeError:
            return []
        return data if isinstance(data, list) else [data]

    def node_status(self, i):
        for s in self.status(i):
            if s.get("node") == i and s.get("up", True):
                return s
        return None

    # ---- waiting -------------------------------------------------------------------------

    def wait_until(self, what, pred, timeout=60, interval=0.3):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last})")

    def wait_serving(self, nodes=None, timeout=60):
        nodes = list(range(self.n)) if nodes is None else nodes

        def ok():
            st = {s["node"]: s for s in self.status() if s.get("up", True)}
            return all(i in st for i in nodes)

        return self.wait_until(f"nodes {nodes} answering status", ok, timeout)

    def wait_converged(self, nodes=None, min_applied=1, timeout=90):
        """All `nodes` report the same applied epoch (>= min_applied) and state digest."""
        nodes = list(range(self.n)) if nodes is None else nodes

        def ok():
            st = {s["node"]: s for s in self.status() if s.get("up", True)}
            if not all(i in st for i in nodes):
                return None
            applied = {st[i]["applied"] for i in nodes}
            digests = {st[i]["state_digest"] for i in nodes}
            if len(applied) == 1 and len(digests) == 1 and min(applied) >= min_applied:
                return st
            return None

        return self.wait_until(f"nodes {nodes} converging", ok, timeout)

    def sanitizer_reports(self):
        """(node, first line) of every node log that holds a sanitizer report."""
        found = []
        for i in range(self.n):
            report = sanitizer_report(self.log_text(i))
            if report:
                found.append((i, report))
        return found

    def log_text(self, i):
        try:
            return open(self.log_path(i), errors="replace").read()
        except FileNotFoundError:
            return ""


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def run_named_tests(bin_dir, tests, names, skip=()):
    """Runs tests[name](cluster) for each name on a fresh 4-node cluster; prints
    one `test=NAME ok|SKIPPED|FAILED` line each, the node logs' tails of a failed
    one (whose files are kept) and its sanitizer reports. An exception of a type
    in `skip` skips the test. Returns the exit code: 1 if any failed, 77 if all
    were skipped, else 0."""
    failed = []
    skipped = []
    for name in names:
        c = Cluster(bin_dir, n=4, name=name)
        c.create()
        t0 = time.time()
        ok = False
        try:
            tests[name](c)
            c.stop_all()
            reports = c.sanitizer_reports()
            if reports:
                raise RuntimeError("sanitizer report in " + "; ".join(
                    f"node {i} log: {line}" for i, line in reports))
            ok = True
            print(f"test={name} ok seconds={time.time() - t0:.1f}", flush=True)
        except tuple(skip) as e:
            print(f"test={name} SKIPPED: {e}", flush=True)
            skipped.append(name)
            ok = True
        except Exception as e:  # noqa: BLE001 - report any failure with the logs kept
            print(f"test={name} FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
        finally:
            c.teardown(keep=not ok)
            if not ok:
                for i in range(c.n):
                    print(f"--- node{i} log tail ---\n{c.log_text(i)[-3000:]}")
                for i, line in c.sanitizer_reports():
                    print(f"--- node{i} log has a sanitizer report: {line}")
    if failed:
        print(f"FAILED: {' '.join(failed)}")
        return 1
    return 77 if skipped and len(skipped) == len(names) else 0
