#!/usr/bin/env python3
"""tobd's sd_notify messages (CTest ops_notify, label ops).

  python3 notify_tobd.py BIN_DIR

A 4-node testnet on 127.0.0.1 (tests/cluster/cluster.py). Node 0 runs with
NOTIFY_SOCKET pointing at an AF_UNIX datagram socket this test owns and
WATCHDOG_USEC=2000000 (WATCHDOG_PID left unset: sd_watchdog_enabled(3) then
accepts the watchdog for whichever process reads it); nodes 1-3 run normally.
The test does a few puts, raises node 0's log level and sends SIGHUP, then
SIGTERM, and checks the datagrams and their order:

  - READY=1 is the first state sent and comes before any STATUS=;
  - STATUS= lines name the epoch and the peers (and reach "peers 3/3");
  - WATCHDOG=1 arrives repeatedly (every ~1 s: at least 3 in 4 s);
  - after SIGHUP: RELOADING=1 (with MONOTONIC_USEC=), then READY=1, and the new
    log level is in effect;
  - STOPPING=1 is the last message, and tobd exits 0.

Prints `ok` or fails with the reason, keeping the cluster's files.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster import Cluster  # noqa: E402


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class NotifySocket:
    """Receives sd_notify datagrams on a path; each message is (time, [assignments])."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            lines = [line for line in data.decode(errors="replace").split("\n") if line]
            with self.lock:
                self.messages.append((time.time(), lines))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, what, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.snapshot()
            if pred(msgs):
                return msgs
            time.sleep(0.05)
        raise Failure(f"timed out waiting for {what}; got: {self.format(self.snapshot())}")

    def close(self):
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()

    @staticmethod
    def format(msgs, limit=60):
        out = [" | ".join(lines) for _, lines in msgs[-limit:]]
        return "\n  " + "\n  ".join(out)


def has(msg_lines, assignment):
    return assignment in msg_lines


def index_of(msgs, assignment, start=0):
    for k in range(start, len(msgs)):
        if has(msgs[k][1], assignment):
            return k
    return None


def start_notified(c, i, notify_path):
    """Starts node i like Cluster.start, with the notify environment."""
    env = dict(os.environ)
    for var in ("WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(var, None)
    env["NOTIFY_SOCKET"] = notify_path
    env["WATCHDOG_USEC"] = "2000000"
    argv = [os.path.join(c.bin_dir, "tobd"), "--config", c.config_path(i)]
    logf = open(c.log_path(i), "ab")
    logf.write(f"\n==== start (notify) {' '.join(argv)} at {time.time():.3f}\n".encode())
    logf.flush()
    c.procs[i] = subprocess.Popen(argv, stdout=logf, stderr=logf, start_new_session=True, env=env)
    logf.close()
    return c.procs[i]


def run(c, ns):
    c.create()
    for i in range(1, c.n):
        c.start(i)
    proc = start_notified(c, 0, ns.path)

    # READY=1 once recovered and serving; STATUS lines follow.
    msgs = ns.wait_for("READY=1", lambda m: index_of(m, "READY=1") is not None)
    check(has(msgs[0][1], "READY=1"), f"the first message is not READY=1:{ns.format(msgs)}")
    c.wait_serving()
    for k in range(3):
        out = c.client_json("put", f"notify-{k}", f"v{k}", "--node", "0")
        check(out is not None and out.get("status") == "committed", f"put notify-{k}: {out}")

    def peers_all(m):
        return any(line.startswith("STATUS=") and "peers 3/3" in line for _, ls in m for line in ls)

    ns.wait_for("STATUS with peers 3/3", peers_all, timeout=30)

    # Watchdog: WATCHDOG_USEC=2 s, pinged at half of it -> ~4 pings in 4 s.
    t0 = time.time()
    time.sleep(4.2)
    pings = [t for t, ls in ns.snapshot() if has(ls, "WATCHDOG=1") and t0 <= t <= t0 + 4.0]
    check(len(pings) >= 3, f"only {len(pings)} WATCHDOG=1 in 4 s (expected >= 3)")
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    check(max(gaps) < 2.0, f"WATCHDOG=1 gaps reach the 2 s interval: {gaps}")

    # SIGHUP: RELOADING=1, the config re-read (log level), READY=1 again.
    cfg = c.config_path(0)
    text = open(cfg).read()
    check('log_level = "info"' in text, f"node 0's config has no log_level = \"info\": {cfg}")
    open(cfg, "w").write(text.replace('log_level = "info"', 'log_level = "debug"'))
    before = len(ns.snapshot())
    proc.send_signal(signal.SIGHUP)

    def reloaded(m):
        r = index_of(m, "RELOADING=1", before)
        return r is not None and index_of(m, "READY=1", r + 1) is not None

    msgs = ns.wait_for("RELOADING=1 then READY=1 after SIGHUP", reloaded, timeout=15)
    r = index_of(msgs, "RELOADING=1", before)
    check(any(line.startswith("MONOTONIC_USEC=") for line in msgs[r][1]),
          f"RELOADING=1 without MONOTONIC_USEC=: {msgs[r][1]}")
    c.wait_until("the SIGHUP log line", lambda: "SIGHUP: log level is now debug" in c.log_text(0),
                 timeout=10)
    check(proc.poll() is None, "tobd exited on SIGHUP")

    # SIGTERM: STOPPING=1 last, exit 0.
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    check(code == 0, f"tobd exited {code} on SIGTERM")
    time.sleep(0.3)  # let the reader drain the socket
    msgs = ns.snapshot()

    # The order over the whole run.
    states = [ls for _, ls in msgs]
    first_status = next((k for k, ls in enumerate(states)
                         if any(x.startswith("STATUS=") for x in ls)), None)
    first_ready = index_of(msgs, "READY=1")
    check(first_status is not None, f"no STATUS= at all:{ns.format(msgs)}")
    check(first_ready < first_status, f"STATUS= before READY=1:{ns.format(msgs)}")
    statuses = [x for ls in states for x in ls if x.startswith("STATUS=")]
    for s in statuses:
        check("epoch" in s and "peers" in s, f"STATUS without epoch and peers: {s}")
    check(has(states[-1], "STOPPING=1"), f"STOPPING=1 is not the last message:{ns.format(msgs)}")
    check(sum(has(ls, "STOPPING=1") for ls in states) == 1, "STOPPING=1 sent more than once")
    check(sum(has(ls, "RELOADING=1") for ls in states) == 1, "RELOADING=1 count != 1")
    check(sum(has(ls, "READY=1") for ls in states) == 2,
          f"READY=1 should come twice (start, after reload):{ns.format(msgs)}")
    n_wd = sum(has(ls, "WATCHDOG=1") for ls in states)
    print(f"messages: {len(msgs)}, STATUS: {len(statuses)}, WATCHDOG: {n_wd}")
    print("first:", " | ".join(states[0]))
    print("statuses:", statuses[:3], "...", statuses[-1])
    print("last:", " | ".join(states[-1]))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    c = Cluster(sys.argv[1], n=4, name="notify")
    ns = None
    keep = True
    started = time.time()
    try:
        ns = NotifySocket(os.path.join(c.dir, "notify.sock"))
        run(c, ns)
        keep = False
        print(f"ok seconds={time.time() - started:.1f}")
        return 0
    except (Failure, TimeoutError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        if ns:
            ns.close()
        c.teardown(keep=keep)


if __name__ == "__main__":
    sys.exit(main())
