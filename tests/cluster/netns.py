#!/usr/bin/env python3
"""Network namespaces for real-cluster tests (docs/checkers.md, "Network").

    from netns import Netns, make_net

    if not Netns.available():
        print("notice:", Netns.available().reason)
    with Netns(4, "tob1") as net:          # namespaces tob1-n0 .. tob1-n3
        p = net.run(0, ["tobd", "--config", cfg])   # inside tob1-n0
        net.addr(0)                         # "10.77.K.1"
        net.partition([[0, 1], [2, 3]])     # nft DROP between the groups
        net.isolate(3); net.asymmetric(0, 1); net.heal()
    # everything created is gone here, also after an exception

Each namespace <prefix>-n<i> has a veth pair: eth0 (10.77.K.<i+1>/24) inside
it, <prefix>-v<i> on the bridge <prefix>-br in the root namespace. K is derived
from the prefix (the subnets of different prefixes live on different bridges
and never meet, so a clash of K is harmless anyway). Faults are nftables rules
in a table `inet tobnet` inside each namespace (output: drop to a blocked
peer's address; input: drop from it), so they disappear with the namespaces.
Established TCP connections stall rather than reset, as with a real partition.

Requires root, iproute2 and nftables (`make deps` installs them). When they
are missing, `Netns.available()` is false with a `.reason`, and callers fall
back to 127.0.0.1 (`make_net` does this and prints a notice).

One run owns a prefix at a time (an flock on /run/lock/tobd-netns-<prefix>.lock
or $TMPDIR); entering first removes leftovers of a crashed run with the same
prefix (`cleanup_stale`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Iterable, Optional, Sequence

NFT_TABLE = "tobnet"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class NetnsError(RuntimeError):
    """Setting up or controlling the namespaces failed."""


class NetnsUnavailable(NetnsError):
    """A fault that needs namespaces was asked of the loopback fallback."""


class Availability:
    """Truthy when namespaces can be used; `.reason` says why not."""

    def __init__(self, ok: bool, reason: str = ""):
        self.ok = ok
        self.reason = reason

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Availability({self.ok}, {self.reason!r})"


def _sh(argv: Sequence[str], *, check: bool = True, input: Optional[str] = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def _lock_dir() -> str:
    for d in ("/run/lock", "/var/lock"):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            return d
    return tempfile.gettempdir()


def subnet_octet(prefix: str) -> int:
    """The third octet K of 10.77.K.0/24 for a prefix (20..219)."""
    return 20 + zlib.crc32(prefix.encode()) % 200


_available: Optional[Availability] = None


def _probe() -> Availability:
    if not sys.platform.startswith("linux"):
        return Availability(False, "not Linux")
    if os.geteuid() != 0:
        return Availability(False, "not running as root (network namespaces need CAP_NET_ADMIN)")
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return Availability(False, f"`{tool}` not found (install {pkg}; `make deps` does)")
    probe = f"tobprobe{os.getpid()}"
    try:
        r = _sh(["ip", "netns", "add", probe], check=False)
        if r.returncode != 0:
            return Availability(False, f"`ip netns add` failed: {r.stderr.strip()}")
        try:
            steps = [
                ["ip", "-n", probe, "link", "add", "pveth0", "type", "veth", "peer", "name", "pveth1"],
                ["ip", "-n", probe, "link", "add", "pbr0", "type", "bridge"],
                ["ip", "netns", "exec", probe, "nft", "add", "table", "inet", NFT_TABLE],
            ]
            for argv in steps:
                r = _sh(argv, check=False)
                if r.returncode != 0:
                    return Availability(False, f"`{' '.join(argv)}` failed: {r.stderr.strip()}")
        finally:
            _sh(["ip", "netns", "del", probe], check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return Availability(False, f"probe failed: {e}")
    return Availability(True, "")


def cleanup_stale(prefix: str) -> list:
    """Removes what a crashed run with `prefix` left: processes inside its
    namespaces (SIGKILL), the namespaces, its links and bridge, and its
    iptables FORWARD rules. Returns what it removed. Must not be called while
    another live run uses the prefix (Netns holds a lock for that)."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"bad prefix {prefix!r}")
    removed = []
    ns_re = re.compile(rf"^{re.escape(prefix)}-n\d+$")
    r = _sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if ns_re.match(name):
            _kill_netns_pids(name)
            _sh(["ip", "netns", "del", name], check=False)
            removed.append(f"netns {name}")
    link_re = re.compile(rf"^{re.escape(prefix)}-(v\d+|br)$")
    r = _sh(["ip", "-o", "link", "show"], check=False)
    links = []
    for line in r.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@")[0]
            if link_re.match(name):
                links.append(name)
    for name in sorted(links, key=lambda x: x.endswith("-br")):  # veths first
        if _sh(["ip", "link", "del", name], check=False).returncode == 0:
            removed.append(f"link {name}")
    removed += _remove_forward_rules(prefix)
    return removed


def _kill_netns_pids(ns: str) -> None:
    r = _sh(["ip", "netns", "pids", ns], check=False)
    pids = [int(p) for p in r.stdout.split() if p.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        if pids:
            time.sleep(0.02)


def _forward_comment(prefix: str) -> str:
    return f"tobd-netns:{prefix}"


def _remove_forward_rules(prefix: str) -> list:
    if shutil.which("iptables") is None:
        return []
    removed = []
    comment = _forward_comment(prefix)
    r = _sh(["iptables", "-w", "-S", "FORWARD"], check=False)
    for line in r.stdout.splitlines():
        if comment in line and line.startswith("-A FORWARD"):
            argv = ["iptables", "-w", "-D"] + _split_rule(line[len("-A "):])
            if _sh(argv, check=False).returncode == 0:
                removed.append(f"iptables rule {comment}")
    return removed


def _split_rule(rule: str) -> list:
    import shlex
    return shlex.split(rule)


class Netns:
    """n namespaces on one bridge, with partition controls. See the module doc."""

    def __init__(self, n: int, prefix: str = "tob", *, k: Optional[int] = None):
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"prefix must match {_PREFIX_RE.pattern} (interface names are "
                             f"limited to 15 characters): {prefix!r}")
        if not 1 <= n <= 200:
            raise ValueError("1 <= n <= 200")
        self.n = n
        self.prefix = prefix
        self.k = subnet_octet(prefix) if k is None else k
        self.bridge = f"{prefix}-br"
        self._drops: set = set()  # (src, dst) node pairs whose packets are dropped
        self._procs: list = []
        self._lock_fd: Optional[int] = None
        self._created: list = []  # what teardown must remove, in creation order
        self._forward_rule = False
        self._open = False

    # ---- availability -------------------------------------------------
    @staticmethod
    def available() -> Availability:
        """Whether namespaces work here (root, ip, nft, veth, bridge); cached."""
        global _available
        if _available is None:
            _available = _probe()
        return _available

    cleanup_stale = staticmethod(cleanup_stale)

    # ---- names ----------------------------------------------------------
    def ns(self, i: int) -> str:
        self._check_index(i)
        return f"{self.prefix}-n{i}"

    def addr(self, i: int) -> str:
        self._check_index(i)
        return f"10.77.{self.k}.{i + 1}"

    @property
    def subnet(self) -> str:
        return f"10.77.{self.k}.0/24"

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.n:
            raise IndexError(f"node {i} out of range 0..{self.n - 1}")

    # ---- lifecycle ------------------------------------------------------
    def __enter__(self) -> "Netns":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        if self._open:
            return
        avail = Netns.available()
        if not avail:
            raise NetnsUnavailable(avail.reason)
        path = os.path.join(_lock_dir(), f"tobd-netns-{self.prefix}.lock")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise NetnsError(f"prefix {self.prefix!r} is in use by another run ({path})") from None
                raise
            try:  # the holder unlinks the file when done: make sure we locked the live one
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._lock_fd = fd
        self._lock_path = path
        self._open = True
        try:
            stale = cleanup_stale(self.prefix)
            if stale:
                print(f"netns: removed leftovers of an earlier run: {', '.join(stale)}", file=sys.stderr)
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        br = self.bridge
        _sh(["ip", "link", "add", br, "type", "bridge"])
        self._created.append(("link", br))
        _sh(["ip", "link", "set", br, "up"])
        for i in range(self.n):
            ns, host, peer = self.ns(i), f"{self.prefix}-v{i}", f"{self.prefix}-p{i}"
            _sh(["ip", "netns", "add", ns])
            self._created.append(("netns", ns))
            _sh(["ip", "link", "add", host, "type", "veth", "peer", "name", peer])
            self._created.append(("link", host))
            _sh(["ip", "link", "set", peer, "netns", ns])
            _sh(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
            _sh(["ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0"])
            _sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            _sh(["ip", "link", "set", host, "master", br])
            _sh(["ip", "link", "set", host, "up"])
            _sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=(
                f"table inet {NFT_TABLE} {{\n"
                "  chain input { type filter hook input priority 0; policy accept; }\n"
                "  chain output { type filter hook output priority 0; policy accept; }\n"
                "}\n"))
        self._allow_bridge_forwarding()

    def _allow_bridge_forwarding(self) -> None:
        """With br_netfilter loaded, bridged frames traverse the root
        namespace's iptables FORWARD chain; if that chain could drop them
        (policy DROP or any rule), accept our bridge's traffic explicitly."""
        if shutil.which("iptables") is None:
            return
        try:
            with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
                if f.read().strip() != "1":
                    return
        except OSError:
            return
        r = _sh(["iptables", "-w", "-S", "FORWARD"], check=False)
        lines = r.stdout.splitlines()
        if r.returncode != 0 or lines == ["-P FORWARD ACCEPT"]:
            return
        _sh(["iptables", "-w", "-I", "FORWARD", "-i", self.bridge, "-o", self.bridge,
             "-m", "comment", "--comment", _forward_comment(self.prefix), "-j", "ACCEPT"])
        self._forward_rule = True

    def close(self) -> None:
        """Tears everything down (idempotent): processes started with run()
        and any other process left in the namespaces (SIGKILL), namespaces,
        links, bridge, iptables rule, lock."""
        if not self._open:
            return
        errors = []
        for p in self._procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self._procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                errors.append(f"pid {p.pid} did not exit")
            _close_pipes(p)
        self._procs.clear()
        for kind, name in reversed(self._created):
            if kind == "netns":
                _kill_netns_pids(name)
                r = _sh(["ip", "netns", "del", name], check=False)
            else:
                if _sh(["ip", "link", "show", name], check=False).returncode != 0:
                    continue  # a veth goes away with its namespace
                r = _sh(["ip", "link", "del", name], check=False)
            if r.returncode != 0:
                errors.append(f"{kind} {name}: {r.stderr.strip()}")
        self._created.clear()
        if self._forward_rule:
            _remove_forward_rules(self.prefix)
            self._forward_rule = False
        try:
            left = cleanup_stale(self.prefix)  # belt and braces
            if left:
                errors.append(f"left over: {', '.join(left)} (removed)")
        finally:
            if self._lock_fd is not None:
                try:
                    os.unlink(self._lock_path)
                except OSError:
                    pass
                os.close(self._lock_fd)
                self._lock_fd = None
            self._open = False
            self._drops.clear()
        if errors:
            print(f"netns: teardown of {self.prefix}: {'; '.join(errors)}", file=sys.stderr)

    # ---- processes ------------------------------------------------------
    def run(self, i: int, argv: Sequence[str], **popen_kwargs) -> subprocess.Popen:
        """Starts argv inside namespace i (`ip netns exec`); the process is
        killed at teardown if still running. Returns the Popen (its pid is
        the program's own: ip execs it)."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(i), *argv], **popen_kwargs)
        self._procs.append(p)
        return p

    def exec(self, i: int, argv: Sequence[str], *, check: bool = False, timeout: float = 60,
             **run_kwargs) -> subprocess.CompletedProcess:
        """Runs argv inside namespace i to completion (subprocess.run)."""
        run_kwargs.setdefault("capture_output", True)
        run_kwargs.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", self.ns(i), *argv], check=check,
                              timeout=timeout, **run_kwargs)

    def pids(self, i: int) -> list:
        r = _sh(["ip", "netns", "pids", self.ns(i)], check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    # ---- faults ---------------------------------------------------------
    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Replaces the current faults: packets between nodes of different
        groups are dropped, both ways. Nodes in no group each form a group
        of their own."""
        group_of = {}
        for g, members in enumerate(groups):
            for i in members:
                self._check_index(i)
                if i in group_of:
                    raise ValueError(f"node {i} is in two groups")
                group_of[i] = g
        for i in range(self.n):
            group_of.setdefault(i, ("alone", i))
        self._drops = {(i, j) for i in range(self.n) for j in range(self.n)
                       if i != j and group_of[i] != group_of[j]}
        self._apply()

    def isolate(self, i: int) -> None:
        """Replaces the current faults: node i can reach no one, no one can reach it."""
        self._check_index(i)
        self.partition([[i], [j for j in range(self.n) if j != i]])

    def asymmetric(self, i: int, j: int) -> None:
        """Adds a one-way fault: packets from i to j are dropped (j to i still
        flow; TCP between them fails both ways, as its handshake needs both)."""
        self._check_index(i)
        self._check_index(j)
        if i == j:
            raise ValueError("i == j")
        self._drops.add((i, j))
        self._apply()

    def heal(self) -> None:
        """Removes every fault."""
        self._drops.clear()
        self._apply()

    def blocked(self) -> set:
        """The current (src, dst) pairs whose packets are dropped."""
        return set(self._drops)

    def _apply(self) -> None:
        if not self._open:
            raise NetnsError("not open")
        for i in range(self.n):
            out = sorted(self.addr(j) for (a, j) in self._drops if a == i)
            inp = sorted(self.addr(a) for (a, j) in self._drops if j == i)
            script = [f"flush chain inet {NFT_TABLE} input", f"flush chain inet {NFT_TABLE} output"]
            if out:
                script.append(f"add rule inet {NFT_TABLE} output ip daddr {{ {', '.join(out)} }} drop")
            if inp:
                script.append(f"add rule inet {NFT_TABLE} input ip saddr {{ {', '.join(inp)} }} drop")
            _sh(["ip", "netns", "exec", self.ns(i), "nft", "-f", "-"], input="\n".join(script) + "\n")


def _close_pipes(p: subprocess.Popen) -> None:
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


class LoopbackNet:
    """The fallback when namespaces are unavailable: every node on 127.0.0.1
    (callers must give nodes distinct ports), processes started directly,
    and no network faults (they raise NetnsUnavailable)."""

    isolated = False

    def __init__(self, n: int, reason: str = ""):
        self.n = n
        self.reason = reason
        self._procs: list = []

    def __enter__(self) -> "LoopbackNet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def addr(self, i: int) -> str:
        return "127.0.0.1"

    def run(self, i: int, argv: Sequence[str], **popen_kwargs) -> subprocess.Popen:
        p = subprocess.Popen(list(argv), **popen_kwargs)
        self._procs.append(p)
        return p

    def exec(self, i: int, argv: Sequence[str], *, check: bool = False, timeout: float = 60,
             **run_kwargs) -> subprocess.CompletedProcess:
        run_kwargs.setdefault("capture_output", True)
        run_kwargs.setdefault("text", True)
        return subprocess.run(list(argv), check=check, timeout=timeout, **run_kwargs)

    def _no(self, *a, **k):
        raise NetnsUnavailable(f"network faults need namespaces: {self.reason}")

    partition = isolate = asymmetric = _no

    def heal(self) -> None:
        pass

    def blocked(self) -> set:
        return set()

    def close(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
        for p in self._procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            _close_pipes(p)
        self._procs.clear()


Netns.isolated = True


def make_net(n: int, prefix: str = "tob", *, require: bool = False):
    """A Netns when namespaces are available, else (unless `require`) a
    LoopbackNet after printing a notice. Use as a context manager."""
    avail = Netns.available()
    if avail:
        return Netns(n, prefix)
    if require:
        raise NetnsUnavailable(avail.reason)
    print(f"notice: network namespaces unavailable ({avail.reason}); "
          "running every node on 127.0.0.1 without network faults", file=sys.stderr)
    return LoopbackNet(n, avail.reason)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Network namespace helper for tobd cluster tests.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("available", help="exit 0 if namespaces work here, else print why and exit 1")
    c = sub.add_parser("cleanup", help="remove leftovers of a crashed run")
    c.add_argument("prefix")
    args = ap.parse_args()
    if args.cmd == "available":
        a = Netns.available()
        print("available" if a else f"unavailable: {a.reason}")
        sys.exit(0 if a else 1)
    else:
        for item in cleanup_stale(args.prefix):
            print(f"removed {item}")
