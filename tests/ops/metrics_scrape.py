#!/usr/bin/env python3
"""tobd's metrics and health endpoint during a cluster run (CTest ops_metrics, label ops).

  python3 metrics_scrape.py BIN_DIR [--sample FILE]

A 4-node testnet on 127.0.0.1 (tests/cluster/cluster.py) with
`metrics_address = "127.0.0.1:<free port>"` in every node's config.toml:

  - GET /healthz is 200 on every node, /readyz becomes 200 (caught up, voting);
  - GET /metrics parses as the Prometheus text format (HELP and TYPE before the
    samples of each family, `name{labels} value` samples, names tobd_...,
    counters end in _total, histogram buckets cumulative up to +Inf == _count);
  - after `tobctl bench --clients 4 --txs 400` the counters moved: epochs
    delivered, requests and operations committed, messages in/out by kind,
    bytes in/out, the commit latency and epoch duration histograms; every node
    sees 3 peers connected and votes;
  - a node restarted without its signing high-water mark (node<i>/sign-high-water
    deleted) is a non-voting follower: /readyz is 503 naming the reason,
    tobd_voting is 0, /healthz stays 200.

--sample FILE writes node 0's /metrics after the bench to FILE (the README's
sample scrape). Prints `ok` or fails with the reason, keeping the cluster's files.
"""

import math
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster import Cluster  # noqa: E402


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- the text format ------------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
HELP_RE = re.compile(rf"^# HELP ({NAME}) (.*)$")
TYPE_RE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")


def parse_value(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)


def parse_exposition(text):
    """-> (families {name: {"type", "help"}}, samples {(name, frozenset(labels)): value}).

    Raises Failure on anything outside the format tobd should produce."""
    families = {}
    samples = {}
    current = None  # the family whose samples may follow
    check(text.endswith("\n"), "the exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            m = HELP_RE.match(line)
            if m:
                name = m.group(1)
                check(name not in families, f"{where}: family {name} appears twice")
                families[name] = {"help": m.group(2), "type": None}
                current = name
                continue
            m = TYPE_RE.match(line)
            check(m is not None, f"{where}: neither HELP nor TYPE")
            check(m.group(1) == current and families[current]["type"] is None,
                  f"{where}: TYPE not right after its HELP")
            families[current]["type"] = m.group(2)
            continue
        check(line != "", f"{where}: empty line")
        m = SAMPLE_RE.match(line)
        check(m is not None, f"{where}: not `name{{labels}} value`")
        name, labels_text, value_text = m.groups()
        check(name.startswith("tobd_"), f"{where}: name without the tobd_ prefix")
        try:
            value = parse_value(value_text)
        except ValueError:
            raise Failure(f"{where}: bad value")
        labels = tuple(LABEL_RE.findall(labels_text or ""))
        check(current is not None, f"{where}: sample before any HELP/TYPE")
        ftype = families[current]["type"]
        base = name
        if ftype == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                if name == current + suffix:
                    base = current
        check(base == current, f"{where}: sample of {name} inside family {current}")
        if ftype == "counter":
            check(name.endswith("_total"), f"{where}: counter not named _total")
            check(value >= 0, f"{where}: negative counter")
        if name.endswith("_bucket"):
            check(any(k == "le" for k, _ in labels), f"{where}: bucket without le")
        key = (name, frozenset(labels))
        check(key not in samples, f"{where}: duplicate series")
        samples[key] = value
    for name, f in families.items():
        check(f["type"] is not None, f"family {name} has no TYPE")
        if f["type"] == "histogram":
            check_histogram(name, samples)
    return families, samples


def check_histogram(name, samples):
    groups = {}
    for (n, labels), v in samples.items():
        if n == name + "_bucket":
            rest = frozenset((k, x) for k, x in labels if k != "le")
            le = parse_value(dict(labels)["le"])
            groups.setdefault(rest, []).append((le, v))
    check(groups, f"histogram {name} has no buckets")
    for rest, buckets in groups.items():
        buckets.sort()
        check(buckets[-1][0] == math.inf, f"histogram {name}: no +Inf bucket")
        counts = [v for _, v in buckets]
        check(counts == sorted(counts), f"histogram {name}: buckets not cumulative: {counts}")
        count = samples.get((name + "_count", rest))
        check(count == counts[-1], f"histogram {name}: +Inf bucket {counts[-1]} != _count {count}")
        check((name + "_sum", rest) in samples, f"histogram {name}: no _sum")


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def total(samples, name):
    """Sum over every series of name (any labels)."""
    return sum(v for (n, _), v in samples.items() if n == name)


def labels_of(samples, name, label):
    return {dict(ls).get(label) for (n, ls), _ in samples.items() if n == name}


# ---- HTTP ---------------------------------------------------------------------------------


def http_get(port, path, timeout=5):
    """-> (status, body, content type); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, "", ""


def scrape(port):
    status, body, ctype = http_get(port, "/metrics")
    check(status == 200, f"/metrics on :{port} answered {status}")
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          f"/metrics Content-Type: {ctype}")
    return parse_exposition(body)[1], body


def free_ports(count, avoid):
    ports = []
    socks = []
    while len(ports) < count:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        socks.append(s)
        if p not in avoid:
            ports.append(p)
    for s in socks:
        s.close()
    return ports


# ---- the test -----------------------------------------------------------------------------


def run(c, sample_file):
    c.create()
    node_ports = set(range(c.base_port, c.base_port + 3 * c.n))
    ports = free_ports(c.n, node_ports)
    for i in range(c.n):
        cfg = c.config_path(i)
        text = open(cfg).read()
        check('metrics_address = ""' in text, f"{cfg} has no metrics_address = \"\"")
        open(cfg, "w").write(
            text.replace('metrics_address = ""', f'metrics_address = "127.0.0.1:{ports[i]}"'))
    c.start_all()
    c.wait_serving()

    for i in range(c.n):
        status, body, _ = http_get(ports[i], "/healthz")
        check(status == 200, f"node {i} /healthz: {status} {body!r}")
        status, _, _ = http_get(ports[i], "/nope")
        check(status == 404, f"node {i} /nope: {status}")
    c.wait_until("every node /readyz 200",
                 lambda: all(http_get(p, "/readyz")[0] == 200 for p in ports), timeout=60)

    before = [scrape(p)[0] for p in ports]
    r = c.tobctl("bench", "--clients", "4", "--txs", "400", check=False, timeout=180)
    check(r.returncode == 0, f"bench failed ({r.returncode}): {r.stdout}{r.stderr}")
    print(r.stdout.strip())
    c.wait_converged(min_applied=1)
    time.sleep(1.2)  # the per-second gauges and transport byte counters

    after = []
    for i, p in enumerate(ports):
        s, body = scrape(p)
        after.append(s)
        b = before[i]
        for name in ("tobd_epochs_delivered_total", "tobd_requests_committed_total",
                     "tobd_operations_committed_total", "tobd_bytes_in_total",
                     "tobd_bytes_out_total", "tobd_epoch_duration_seconds_count"):
            # (tobd_commit_latency_seconds: only the nodes the clients submitted to; below)
            check(total(s, name) > total(b, name),
                  f"node {i}: {name} did not move ({total(b, name)} -> {total(s, name)})")
        check(total(s, "tobd_requests_committed_total") >= 400,
              f"node {i}: {total(s, 'tobd_requests_committed_total')} requests committed < 400")
        for name in ("tobd_messages_in_total", "tobd_messages_out_total"):
            check(total(s, name) > total(b, name), f"node {i}: {name} did not move")
            kinds = labels_of(s, name, "kind")
            check({"block", "seen", "aba", "commit"} <= kinds, f"node {i}: {name} kinds {kinds}")
        check(value(s, "tobd_peers_connected") == 3,
              f"node {i}: tobd_peers_connected {value(s, 'tobd_peers_connected')}")
        check(value(s, "tobd_voting") == 1, f"node {i}: tobd_voting {value(s, 'tobd_voting')}")
        check(value(s, "tobd_applied_epoch") >= 1, f"node {i}: tobd_applied_epoch")
        check(value(s, "tobd_rocksdb_size_bytes") > 0, f"node {i}: tobd_rocksdb_size_bytes")
        check(total(s, "tobd_aba_rounds_count") > 0, f"node {i}: tobd_aba_rounds_count")
        check(total(s, "tobd_faults_total") == 0, f"node {i}: faults in an honest run")
        if i == 0 and sample_file:
            with open(sample_file, "w") as f:
                f.write(body)
    latency = sum(total(s, "tobd_commit_latency_seconds_count") for s in after)
    check(latency >= 400, f"tobd_commit_latency_seconds_count over the nodes: {latency} < 400")

    # A non-voting follower: node 3 restarted without its high-water mark.
    c.stop(3)
    os.remove(os.path.join(c.node_dir(3), "sign-high-water"))
    c.start(3)
    c.wait_until("node 3 /healthz", lambda: http_get(ports[3], "/healthz")[0] == 200, timeout=30)
    c.wait_until("node 3 serving", lambda: http_get(ports[3], "/readyz")[1] != "starting\n"
                 and http_get(ports[3], "/readyz")[0] != 0, timeout=30)
    time.sleep(1.2)
    status, body, _ = http_get(ports[3], "/readyz")
    check(status == 503 and "non-voting" in body, f"follower /readyz: {status} {body!r}")
    s, _ = scrape(ports[3])
    check(value(s, "tobd_voting") == 0, f"follower tobd_voting {value(s, 'tobd_voting')}")
    for i in range(3):
        check(http_get(ports[i], "/readyz")[0] == 200, f"node {i} /readyz after the restart")
    print(f"follower /readyz: {status} {body.strip()!r}")
    # Sanitizer builds (make tsan): the HTTP threads read what the loop writes.
    c.stop_all()
    reports = c.sanitizer_reports()
    check(not reports, "sanitizer report in " + "; ".join(f"node {i} log: {line}"
                                                          for i, line in reports))


def main():
    args = sys.argv[1:]
    sample = None
    if "--sample" in args:
        k = args.index("--sample")
        sample = os.path.abspath(args[k + 1])
        del args[k:k + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    c = Cluster(args[0], n=4, name="metrics")
    keep = True
    started = time.time()
    try:
        run(c, sample)
        keep = False
        print(f"ok seconds={time.time() - started:.1f}")
        return 0
    except (Failure, TimeoutError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        c.teardown(keep=keep)


if __name__ == "__main__":
    sys.exit(main())
