#!/usr/bin/env python3
"""Tests of netns.py on the real kernel: three namespaces, TCP between them,
partition, heal, isolate, asymmetric (UDP shows the direction), and teardown
that leaves nothing, also after an exception or a crashed run.

Exits 77 (CTest SKIP_RETURN_CODE) when namespaces are unavailable here
(not root, no iproute2/nftables, or `ip netns add` refused).
Run: python3 tests/cluster/test_netns.py"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from netns import Netns, NetnsError, cleanup_stale, make_net  # noqa: E402

SKIP = 77
PORT = 7400
PREFIX = f"tt{os.getpid() % 100000}"

TCP_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello from " + sys.argv[1].encode())
    c.close()
"""

TCP_CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    c.settimeout(float(sys.argv[3]))
    print(c.recv(100).decode())
except OSError as e:
    print("error:", e)
    sys.exit(1)
"""

UDP_SINK = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    d, _ = s.recvfrom(200)
    print(d.decode(), flush=True)
"""

UDP_SEND = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    try:
        s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    except OSError:  # a local output DROP fails the send with EPERM
        pass
"""


def leftovers(prefix: str) -> list:
    out = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out += [l.split()[0] for l in ns.splitlines() if l.startswith(prefix + "-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for l in links.splitlines():
        name = l.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(prefix + "-"):
            out.append(name)
    fwd = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout \
        if os.path.exists("/usr/sbin/iptables") or os.path.exists("/sbin/iptables") else ""
    out += [l for l in fwd.splitlines() if f"tobd-netns:{prefix}" in l]
    return out


class Cluster:
    """TCP servers and UDP sinks in every namespace."""

    def __init__(self, net: Netns):
        self.net = net
        self.sinks = {}
        for i in range(net.n):
            p = net.run(i, [sys.executable, "-u", "-c", TCP_SERVER, net.addr(i), str(PORT)],
                        stdout=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "ready"
            s = net.run(i, [sys.executable, "-u", "-c", UDP_SINK, net.addr(i), str(PORT + 1)],
                        stdout=subprocess.PIPE, text=True)
            assert s.stdout.readline().strip() == "ready"
            q: queue.Queue = queue.Queue()
            threading.Thread(target=self._pump, args=(s.stdout, q), daemon=True).start()
            self.sinks[i] = q

    @staticmethod
    def _pump(f, q):
        for line in f:
            q.put(line.strip())

    def tcp(self, i: int, j: int, timeout: float = 1.5) -> bool:
        """Whether a TCP connection from namespace i to j's server works."""
        r = self.net.exec(i, [sys.executable, "-c", TCP_CLIENT, self.net.addr(j), str(PORT), str(timeout)],
                          timeout=timeout + 30)
        if r.returncode == 0:
            assert r.stdout.strip() == f"hello from {self.net.addr(j)}", r.stdout
        return r.returncode == 0

    def udp(self, i: int, j: int, wait: float = 1.0) -> bool:
        """Whether a datagram from namespace i reaches j's sink."""
        token = f"tok-{i}-{j}-{time.monotonic_ns()}"
        self.net.exec(i, [sys.executable, "-c", UDP_SEND, self.net.addr(j), str(PORT + 1), token],
                      check=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if self.sinks[j].get(timeout=max(0.01, deadline - time.monotonic())) == token:
                    return True
            except queue.Empty:
                break
        return False

    def matrix(self) -> dict:
        n = self.net.n
        return {(i, j): self.tcp(i, j) for i in range(n) for j in range(n) if i != j}


class NetnsTest(unittest.TestCase):
    def tearDown(self):
        cleanup_stale(PREFIX)

    def test_connectivity_partition_heal_asymmetric_and_teardown(self):
        with Netns(3, PREFIX) as net:
            self.assertEqual(net.addr(0), f"10.77.{net.k}.1")
            self.assertEqual(net.addr(2), f"10.77.{net.k}.3")
            c = Cluster(net)
            every = {(i, j): True for i in range(3) for j in range(3) if i != j}
            self.assertEqual(c.matrix(), every, "all pairs connect before any fault")

            net.partition([[0], [1, 2]])
            m = c.matrix()
            self.assertEqual(m, {(0, 1): False, (0, 2): False, (1, 0): False, (2, 0): False,
                                 (1, 2): True, (2, 1): True}, "partition {0} | {1,2}")
            self.assertFalse(c.udp(1, 0))

            net.heal()
            self.assertEqual(c.matrix(), every, "after heal")

            net.isolate(2)
            m = c.matrix()
            self.assertEqual({p for p, ok in m.items() if ok}, {(0, 1), (1, 0)}, "isolate 2")

            net.heal()
            net.asymmetric(0, 1)
            self.assertEqual(net.blocked(), {(0, 1)})
            self.assertFalse(c.udp(0, 1), "0 -> 1 is dropped")
            self.assertTrue(c.udp(1, 0), "1 -> 0 still flows")
            self.assertFalse(c.tcp(0, 1), "TCP 0 -> 1 cannot start (SYN dropped)")
            self.assertFalse(c.tcp(1, 0), "TCP 1 -> 0 cannot start (SYN-ACK dropped)")
            self.assertTrue(c.tcp(0, 2) and c.tcp(2, 1), "other pairs unaffected")

            net.heal()
            self.assertEqual(c.matrix(), every, "after the last heal")
            self.assertTrue(c.udp(0, 1))
            servers = [pid for i in range(3) for pid in net.pids(i)]
            self.assertGreaterEqual(len(servers), 6)
        self.assertEqual(leftovers(PREFIX), [], "teardown leaves nothing")
        for pid in servers:
            self.assertFalse(os.path.exists(f"/proc/{pid}") and _not_zombie(pid), f"pid {pid} survived")

    def test_teardown_after_exception(self):
        pid = None
        with self.assertRaises(RuntimeError):
            with Netns(2, PREFIX) as net:
                # a process started without run(): teardown still kills it
                subprocess.run(["ip", "netns", "exec", net.ns(1), "sh", "-c", "sleep 300 &"], check=True)
                time.sleep(0.1)
                pid = net.pids(1)[0]
                net.partition([[0], [1]])
                raise RuntimeError("boom")
        self.assertEqual(leftovers(PREFIX), [])
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and _not_zombie(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(f"/proc/{pid}") and _not_zombie(pid))

    def test_cleanup_stale_after_a_crash(self):
        # What a SIGKILLed run leaves: a namespace with a process, a veth on the bridge.
        subprocess.run(["ip", "link", "add", f"{PREFIX}-br", "type", "bridge"], check=True)
        subprocess.run(["ip", "netns", "add", f"{PREFIX}-n0"], check=True)
        subprocess.run(["ip", "link", "add", f"{PREFIX}-v5", "type", "veth", "peer", "name", f"{PREFIX}-x5"],
                       check=True)
        subprocess.run(["ip", "link", "set", f"{PREFIX}-v5", "master", f"{PREFIX}-br"], check=True)
        self.assertTrue(leftovers(PREFIX))
        removed = cleanup_stale(PREFIX)
        self.assertIn(f"netns {PREFIX}-n0", removed)
        self.assertEqual(leftovers(PREFIX), [])
        # ... and entering a Netns cleans them up by itself
        subprocess.run(["ip", "netns", "add", f"{PREFIX}-n7"], check=True)
        with Netns(2, PREFIX) as net:
            self.assertNotIn(f"{PREFIX}-n7", subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                            text=True).stdout)
            self.assertTrue(Cluster(net).tcp(0, 1))
        self.assertEqual(leftovers(PREFIX), [])

    def test_one_run_per_prefix(self):
        with Netns(1, PREFIX):
            with self.assertRaises(NetnsError):
                Netns(1, PREFIX).open()
        self.assertEqual(leftovers(PREFIX), [])

    def test_make_net_and_bad_prefix(self):
        with make_net(2, PREFIX) as net:
            self.assertTrue(net.isolated)
        with self.assertRaises(ValueError):
            Netns(2, "Bad-Prefix-Too-Long")


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    avail = Netns.available()
    if not avail:
        print(f"SKIP: network namespaces unavailable: {avail.reason}")
        sys.exit(SKIP)
    unittest.main(verbosity=2)
