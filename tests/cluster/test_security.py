#!/usr/bin/env python3
"""Cluster tests of the transport's security (CTest label `cluster`, docs/security.md):
real tobd processes on 127.0.0.1 and strangers played with pyzmq.

  python3 test_security.py BIN_DIR [TEST ...]

Each test prints one line `test=NAME ok seconds=S` (plus its measurements) or
fails with the reason and keeps the cluster's files in a folder whose path it
prints.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402

try:
    import zmq  # noqa: F401
except ImportError:  # python3-zmq (Debian) while python3 is another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import zmq  # noqa: F401,E402


class Failure(Exception):
    pass


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


TESTS = {
    "squat_recovery": test_squat_recovery,
    "stranger_first": test_stranger_first,
}


def main():
    bin_dir = sys.argv[1]
    names = sys.argv[2:] or list(TESTS)
    failed = []
    for name in names:
        c = Cluster(bin_dir, n=4, name=name)
        c.create()
        t0 = time.time()
        ok = False
        try:
            TESTS[name](c)
            c.stop_all()
            reports = c.sanitizer_reports()
            if reports:
                raise Failure("sanitizer report in " + "; ".join(
                    f"node {i} log: {line}" for i, line in reports))
            ok = True
            print(f"test={name} ok seconds={time.time() - t0:.1f}", flush=True)
        except Exception as e:  # noqa: BLE001 - report any failure with the logs kept
            print(f"test={name} FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
        finally:
            c.teardown(keep=not ok)
            if not ok:
                for i in range(c.n):
                    print(f"--- node{i} log tail ---\n{c.log_text(i)[-2000:]}")
    if failed:
        print(f"FAILED: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
