#!/usr/bin/env python3
"""Cluster tests of the tobd daemon (CTest label `cluster`): real processes on
127.0.0.1, driven through tobctl.

  python3 test_daemon.py BIN_DIR [TEST ...]

Each test prints one line `test=NAME ok seconds=S` or fails with the reason and
keeps the cluster's files (logs, data dirs) in a folder whose path it prints.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, run_named_tests  # noqa: E402


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def put(c, key, value, *extra):
    out = c.client_json("put", key, value, *extra)
    check(out is not None and out.get("status") == "committed", f"put {key}: {out}")
    return out


def get(c, key, *extra):
    out = c.client_json("get", key, *extra)
    check(out is not None, f"get {key} failed")
    return out


# ---- tests -----------------------------------------------------------------------------


def test_round_trips(c):
    """put/get/cas/del through the log, --quorum, --local."""
    c.start_all()
    c.wait_serving()
    put(c, "alpha", "1")
    check(get(c, "alpha")["value"] == "1", "get alpha after put")
    out = put(c, "alpha", "2", "--previous")
    check(out["previous"] == "1", f"put --previous returns the previous value: {out}")
    out = put(c, "alpha", "2")
    check("previous" not in out, f"put without --previous returns no previous value: {out}")
    r = c.tobctl("cas", "alpha", "1", "3", "--json", check=False)  # stale expected value
    cas = json.loads(r.stdout)
    check(r.returncode == 3 and cas["ok"] is False and cas["previous"] == "2",
          f"stale cas must fail with exit 3: {r.returncode} {cas}")
    cas = c.client_json("cas", "alpha", "2", "3")
    check(cas["ok"] is True, f"cas with the current value swaps: {cas}")
    q = get(c, "alpha", "--quorum")
    check(q["value"] == "3", f"quorum get: {q}")
    check(len(q.get("nodes", [])) >= c.t + 1, f"quorum reply names t+1 nodes: {q}")
    d = c.client_json("del", "alpha", "--previous")
    check(d["previous"] == "3", f"del --previous returns previous: {d}")
    check(get(c, "alpha")["value"] is None, "absent after del")
    st = c.wait_converged(min_applied=1)
    for i in range(c.n):
        loc = c.client_json("get", "alpha", "--local", "--node", str(i))
        check(loc["value"] is None, f"local read on node {i}: {loc}")
    check(len({s["state_digest"] for s in st.values()}) == 1, "digests equal")


def writer(c, prefix, count, acked, errors, stop):
    for k in range(count):
        if stop.is_set():
            return
        key = f"{prefix}{k}"
        r = c.tobctl("put", key, f"v{k}", "--json", check=False, timeout=120)
        if r.returncode == 0:
            acked.append(key)
        else:
            errors.append((key, r.stdout + r.stderr))


def test_kill_restart_under_load(c):
    """SIGKILL one node while clients write; restart it; nothing acked is lost."""
    c.start_all()
    c.wait_serving()
    acked, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=writer, args=(c, f"w{t}-", 40, acked, errors, stop))
               for t in range(3)]
    for t in threads:
        t.start()
    c.wait_until("20 acked writes", lambda: len(acked) >= 20, timeout=120)
    c.kill(3)
    n_at_kill = len(acked)
    c.wait_until("20 more acked writes with node 3 down",
                 lambda: len(acked) >= n_at_kill + 20, timeout=120)
    c.start(3)
    for t in threads:
        t.join()
    check(not errors, f"client errors: {errors[:3]}")
    st = c.wait_converged(min_applied=1, timeout=120)
    for key in acked:
        for i in (0, 3):
            v = c.client_json("get", key, "--local", "--node", str(i))
            check(v["value"] is not None, f"acked write {key} missing on node {i}")
    check(len({s["state_digest"] for s in st.values()}) == 1, "digests equal")
    print(f"  acked={len(acked)} applied={st[0]['applied']}")


def test_late_start(c):
    """A node started after the others committed epochs catches up."""
    for i in range(3):
        c.start(i)
    c.wait_serving([0, 1, 2])
    for k in range(15):
        put(c, f"late{k}", str(k), "--node", str(k % 3))
    c.start(3)
    st = c.wait_converged(min_applied=1, timeout=90)
    v = c.client_json("get", "late7", "--local", "--node", "3")
    check(v["value"] == "7", f"late node serves the data: {v}")
    check(st[3]["voting"], "late node votes")


def dump_signed_epochs(c, i):
    r = subprocess.run([os.path.join(c.bin_dir, "tobd"), "--config", c.config_path(i),
                        "--dump-sign-log"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"dump-sign-log failed: {r.stderr}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def read_mark(c, i):
    """The mark: the highest epoch of the file's lines (two slots, daemon/high_water.h)."""
    lines = open(os.path.join(c.node_dir(i), "sign-high-water")).read().splitlines()
    return max(int(line.split()[1]) for line in lines)


def test_reformat(c):
    """Data dir deleted (key dir intact): catches up, signs only above its mark."""
    c.start_all()
    c.wait_serving()
    for k in range(10):
        put(c, f"r{k}", str(k))
    c.wait_converged(min_applied=1)
    c.stop(2)
    mark = read_mark(c, 2)
    check(mark > 0, "node 2 signed something before the reformat")
    shutil.rmtree(c.data_dir(2))
    c.start(2)
    for k in range(10, 25):
        put(c, f"r{k}", str(k))
    st = c.wait_converged(min_applied=mark + 1, timeout=120)
    check(st[2]["voting"], "a reformatted node with its mark votes again")
    text = c.log_text(2)
    c.stop(2)
    signed = dump_signed_epochs(c, 2)
    check(signed, "the reformatted node signed again")
    low = [s for s in signed if s["epoch"] <= mark]
    check(not low, f"signed at or below the mark {mark}: {low[:3]}")
    check(f"high-water mark {mark}" in text, "the log names the high-water mark")


def test_corrupt_sign_log(c):
    """A corrupt sign-log: the node runs as a non-voting follower and says so."""
    c.start_all()
    c.wait_serving()
    for k in range(8):
        put(c, f"c{k}", str(k))
    c.wait_converged(min_applied=1)
    c.kill(1)  # SIGKILL: the WAL holds the recent records
    db = os.path.join(c.data_dir(1), "db")
    logs = sorted((os.path.getsize(os.path.join(db, f)), f) for f in os.listdir(db)
                  if f.endswith(".log"))
    check(logs and logs[-1][0] > 4096, f"a WAL to corrupt: {logs}")
    path = os.path.join(db, logs[-1][1])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        mid = len(data) // 2
        for k in range(mid, mid + 64):
            data[k] ^= 0xFF
        f.seek(0)
        f.write(data)
    c.start(1)
    time.sleep(2)
    text = c.log_text(1)
    if not c.running(1):
        check("corrupt" in text.lower(), f"refused to start without saying why:\n{text[-2000:]}")
        return
    st = c.wait_until("node 1 status", lambda: c.node_status(1), timeout=30)
    check(not st["voting"], f"node 1 must not vote: {st}")
    check("NON-VOTING" in text, "the log says non-voting")
    for k in range(8, 14):
        put(c, f"c{k}", str(k))
    st = c.wait_converged(min_applied=1, timeout=90)
    check(not st[1]["voting"], "still a follower")
    c.stop(1)
    c.start(1)
    st = c.wait_until("node 1 status after restart", lambda: c.node_status(1), timeout=30)
    check(not st["voting"], "the damage marker keeps it a follower across restarts")


def test_bad_config(c):
    """Bad configs, 0644 keys, a port in use: clear errors, non-zero exit."""
    tobd = os.path.join(c.bin_dir, "tobd")

    def run(i, *extra):
        return subprocess.run([tobd, "--config", c.config_path(i), *extra], capture_output=True,
                              text=True, timeout=30)

    key = os.path.join(c.node_dir(0), "node.key")
    os.chmod(key, 0o644)
    r = run(0)
    check(r.returncode != 0 and "node.key" in r.stderr and "0644" in r.stderr,
          f"0644 key: {r.returncode} {r.stderr}")
    os.chmod(key, 0o600)
    cfg = c.config_path(1)
    good = open(cfg).read()
    open(cfg, "w").write(good + "\nthis is = = not toml\n")
    r = run(1)
    check(r.returncode != 0 and "config.toml" in r.stderr, f"bad toml: {r.stderr}")
    open(cfg, "w").write(good)
    # port in use: node 2's PUB port held by another socket
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", c.base_port + 4))
    s.listen()
    try:
        r = run(2)
        check(r.returncode != 0 and str(c.base_port + 4) in r.stderr,
              f"port in use: {r.returncode} {r.stderr}")
    finally:
        s.close()
    # --test-byzantine takes the names of the shared catalogue: a behaviour only the
    # simulator implements and an unknown name are refused, saying why
    r = run(0, "--test-byzantine", "forge")
    check(r.returncode == 1 and "'forge' is implemented by tobsim only" in r.stderr,
          f"tobsim-only behaviour: {r.returncode} {r.stderr}")
    r = run(0, "--test-byzantine", "no-such-thing")
    check(r.returncode == 1 and "unknown Byzantine behaviour 'no-such-thing'" in r.stderr
          and "collude" in r.stderr, f"unknown behaviour: {r.returncode} {r.stderr}")
    # unwritable data dir: a regular file where the data dir should be
    open(c.data_dir(3), "w").write("not a dir")
    r = run(3)
    check(r.returncode != 0 and "data" in r.stderr, f"data dir is a file: {r.stderr}")
    os.remove(c.data_dir(3))


TESTS = {
    "round_trips": test_round_trips,
    "kill_restart_under_load": test_kill_restart_under_load,
    "late_start": test_late_start,
    "reformat": test_reformat,
    "corrupt_sign_log": test_corrupt_sign_log,
    "bad_config": test_bad_config,
}


def main():
    names = sys.argv[2:] or list(TESTS)
    return run_named_tests(sys.argv[1], TESTS, names, skip=())


if __name__ == "__main__":
    sys.exit(main())
