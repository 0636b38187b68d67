#!/usr/bin/env python3
"""tobctl's shared options against a live 4-node testnet (cli/options.h).

`tobctl --cluster F put k v` and `tobctl put --cluster F k v` both commit;
--key-file and --json work in either place too; $TOBCTL_CLUSTER names the
cluster when no --cluster is given, and a --cluster on the command line beats
it; a --cluster given before and after the command name with different values
is refused before anything is sent. Every request is checked by reading it back.

usage: tobctl_options.py BIN_DIR [--base-port P]   (exit 0 = pass)
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402
from test_daemon import Failure, check as require  # noqa: E402


def check(cond, what):
    require(cond, what)
    print(f"ok: {what}", flush=True)


def run(bin_dir, args, env_cluster=None):
    """tobctl ARGS with $TOBCTL_CLUSTER set to env_cluster (unset when None)."""
    env = dict(os.environ)
    env.pop("TOBCTL_CLUSTER", None)
    env.pop("TOBCTL_KEY_FILE", None)
    if env_cluster is not None:
        env["TOBCTL_CLUSTER"] = env_cluster
    argv = [os.path.join(bin_dir, "tobctl")] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    print(f"$ {'TOBCTL_CLUSTER=... ' if env_cluster else ''}tobctl {' '.join(map(str, args))}"
          f" -> {r.returncode}", flush=True)
    return r


def as_json(r, what):
    if r.returncode != 0:
        raise Failure(f"{what}: exit {r.returncode}: {r.stdout}{r.stderr}")
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise Failure(f"{what}: not JSON ({e}): {r.stdout!r}")


def scenario(c):
    b = c.bin_dir
    f = c.cluster_file
    k = c.client_key

    # put: the option before the command name, after it, and split between both.
    out = as_json(run(b, ["--cluster", f, "--key-file", k, "--json", "put", "k1", "v1"]),
                  "put with every option before the command name")
    check(out["status"] == "committed" and out["epoch"] >= 1, f"tobctl --cluster F put: {out}")
    out = as_json(run(b, ["put", "--cluster", f, "--key-file", k, "--json", "k2", "v2"]),
                  "put with every option after the command name")
    check(out["status"] == "committed", f"tobctl put --cluster F: {out}")
    out = as_json(run(b, ["--cluster", f, "put", "--key-file", k, "k3", "v3", "--json"]),
                  "put with --cluster before and --key-file after")
    check(out["status"] == "committed", f"options split around the command name: {out}")

    # Read back through the log, with --json given before the command name.
    for key, value in (("k1", "v1"), ("k2", "v2"), ("k3", "v3")):
        got = as_json(run(b, ["--json", "--cluster", f, "--key-file", k, "get", key]), "get")
        check(got["value"] == value, f"get {key} after put: {got}")

    # $TOBCTL_CLUSTER: no --cluster anywhere.
    got = as_json(run(b, ["--key-file", k, "get", "k1", "--json"], env_cluster=f),
                  "get with $TOBCTL_CLUSTER")
    check(got["value"] == "v1", f"get through $TOBCTL_CLUSTER: {got}")
    st = as_json(run(b, ["--json", "status"], env_cluster=f), "status with $TOBCTL_CLUSTER")
    check(isinstance(st, list) and len(st) == c.n, f"status through $TOBCTL_CLUSTER: {st}")
    out = as_json(run(b, ["cas", "--key-file", k, "k1", "v1", "v1b", "--json"], env_cluster=f),
                  "cas with $TOBCTL_CLUSTER")
    check(out["ok"] is True, f"cas through $TOBCTL_CLUSTER: {out}")

    # The command line beats the environment (which names no cluster here).
    bogus = os.path.join(c.dir, "no-such-cluster.toml")
    got = as_json(run(b, ["--cluster", f, "--key-file", k, "get", "k1", "--json"],
                      env_cluster=bogus), "get with --cluster over $TOBCTL_CLUSTER")
    check(got["value"] == "v1b", f"--cluster before the command beats the environment: {got}")
    r = run(b, ["--key-file", k, "get", "k1"], env_cluster=bogus)
    check(r.returncode == 1 and bogus in r.stderr,
          f"a bad $TOBCTL_CLUSTER is named in the error: {r.stderr.strip()}")

    # Two different cluster files: refused, and nothing is written.
    r = run(b, ["--cluster", f, "put", "--cluster", bogus, "--key-file", k, "k4", "v4"])
    check(r.returncode == 1 and "give it once" in r.stderr,
          f"--cluster before and after with different files is refused: {r.stderr.strip()}")
    got = as_json(run(b, ["--cluster", f, "--key-file", k, "get", "k4", "--json"]), "get k4")
    check(got["value"] is None, f"the refused put wrote nothing: {got}")

    # The other cluster commands take --cluster before their name too.
    out = as_json(run(b, ["--cluster", f, "--key-file", k, "--json", "del", "--previous", "k2"]), "del")
    check(out["previous"] == "v2", f"tobctl --cluster F del: {out}")
    c.wait_converged(min_applied=1)
    loc = as_json(run(b, ["--cluster", f, "--json", "get", "--local", "--node", "0", "k3"]),
                  "local get")
    check(loc["value"] == "v3", f"tobctl --cluster F get --local: {loc}")
    bench = as_json(run(b, ["--cluster", f, "--json", "bench", "--txs", "20", "--clients", "1"]),
                    "bench")
    check(bench["requests_committed"] == 20 and bench["errors"] == 0,
          f"tobctl --cluster F --json bench: {bench}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--base-port", type=int, help="first of the 8 ports the testnet uses")
    args = ap.parse_args()
    if args.base_port:
        cl.free_port_block = lambda count, **_: args.base_port
    c = cl.Cluster(args.bin_dir, n=4, name="tobctl-options")
    ok = False
    try:
        c.create()
        c.start_all()
        c.wait_serving()
        scenario(c)
        ok = True
    except (Failure, TimeoutError, RuntimeError) as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
    finally:
        c.teardown(keep=not ok)
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
