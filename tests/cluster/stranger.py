#!/usr/bin/env python3
"""A stranger on the network (docs/security.md): it knows a cluster's endpoints
and public keys (they are in cluster.toml) but holds no member's or permitted
client's secret. It floods every endpoint it is given, in turns, with:

  - CurveZMQ clients with fresh keys and the right server key (the ZAP handler
    must refuse them), sending frames once connected;
  - plaintext ZeroMQ sockets (another security mechanism);
  - raw TCP connections sending random bytes;
  - a SUB with a fresh Curve key on PUB endpoints (it must read nothing).

  python3 stranger.py SPEC.json SECONDS

SPEC.json: {"targets": [{"endpoint": "tcp://...", "kind": "pub"|"router"|"client",
"server_key": "<hex>"}, ...]}. Prints one JSON line of counts when done:
attempts per technique and the number of flood frames the stranger received
(from a PUB it subscribed to, or any answer), which must stay 0.
"""

import json
import os
import random
import resource
import socket
import sys
import time

try:
    import zmq
except ImportError:  # python3-zmq (Debian) while python3 is another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import zmq


def host_port(endpoint):
    rest = endpoint[len("tcp://"):]
    host, port = rest.rsplit(":", 1)
    return host, int(port)


def curve_socket(ctx, kind, server_key):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 0)
    public, secret = zmq.curve_keypair()
    s.curve_serverkey = server_key  # 32 raw bytes
    s.curve_publickey = public
    s.curve_secretkey = secret
    return s


def junk(rnd, size):
    return bytes(rnd.getrandbits(8) for _ in range(size))


def flood(targets, seconds, rate_hz=400):
    ctx = zmq.Context()
    rnd = random.Random(os.getpid())
    counts = {"curve": 0, "plaintext": 0, "tcp": 0, "sub": 0, "frames_sent": 0, "received": 0}
    open_sockets = []
    deadline = time.time() + seconds
    period = 1.0 / rate_hz
    k = 0
    while time.time() < deadline:
        t = targets[k % len(targets)]
        technique = (k // len(targets)) % 4
        k += 1
        key = bytes.fromhex(t["server_key"])
        try:
            if technique == 0:
                kind = zmq.SUB if t["kind"] == "pub" else zmq.DEALER
                s = curve_socket(ctx, kind, key)
                if kind == zmq.SUB:
                    s.setsockopt(zmq.SUBSCRIBE, b"")
                    counts["sub"] += 1
                else:
                    s.setsockopt(zmq.ROUTING_ID, f"node-{rnd.randrange(4)}".encode())
                    counts["curve"] += 1
                s.connect(t["endpoint"])
                open_sockets.append(s)
            elif technique == 1:
                s = ctx.socket(zmq.SUB if t["kind"] == "pub" else zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                if t["kind"] == "pub":
                    s.setsockopt(zmq.SUBSCRIBE, b"")
                s.connect(t["endpoint"])
                open_sockets.append(s)
                counts["plaintext"] += 1
            else:
                host, port = host_port(t["endpoint"])
                with socket.create_connection((host, port), timeout=0.5) as c:
                    c.sendall(junk(rnd, rnd.randrange(1, 600)))
                counts["tcp"] += 1
        except (OSError, zmq.ZMQError):
            pass
        # Frames on every socket still open; anything received is a leak.
        for s in open_sockets:
            if s.socket_type == zmq.DEALER:
                try:
                    s.send_multipart([rnd.choice([b"P", b"C"]), junk(rnd, 64)], zmq.NOBLOCK)
                    counts["frames_sent"] += 1
                except zmq.ZMQError:
                    pass
            try:
                while True:
                    s.recv(zmq.NOBLOCK)
                    counts["received"] += 1
            except zmq.ZMQError:
                pass
        while len(open_sockets) > 64:
            open_sockets.pop(0).close()
        time.sleep(period)
    for s in open_sockets:
        s.close()
    ctx.term()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)  # what the flood itself cost
    return counts


def main():
    spec = json.load(open(sys.argv[1]))
    counts = flood(spec["targets"], float(sys.argv[2]), spec.get("rate_hz", 400))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
