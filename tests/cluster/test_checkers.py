#!/usr/bin/env python3
"""Tests of the history format, the linearizability checker and the log
checker: valid histories from a simulated linearizable register pass; planted
bugs are caught.  Run: python3 tests/cluster/test_checkers.py"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import history  # noqa: E402
import lincheck  # noqa: E402
import logcheck  # noqa: E402
from history import HistoryWriter, Op, read_history, write_history  # noqa: E402


# ---------------------------------------------------------------------------
# A simulated linearizable KV store with concurrent clients.


class Sim:
    """Clients issue ops sequentially, concurrently with each other; each
    applied op takes effect at a random linearization point inside its
    [invoke, complete] interval, and outputs come from applying the ops in
    linearization-point order. Some ops time out (applied or not), some fail
    (never applied). `order` is the applied ops in commit order."""

    def __init__(self, seed: int, clients: int = 5, keys: int = 3, ops: int = 300,
                 p_timeout: float = 0.04, p_fail: float = 0.02, mix=None):
        rng = random.Random(seed)
        self.rng = rng
        mix = mix or {"put": 4, "get": 4, "cas": 2, "del": 1}
        kinds = [k for k, w in mix.items() for _ in range(w)]
        key_names = [f"k{i}" for i in range(keys)]
        written: dict = {k: [] for k in key_names}
        nonces = {f"c{c}": 0 for c in range(clients)}
        pending = []  # (op, lin point or None)
        clock = {f"c{c}": rng.uniform(0, 0.01) for c in range(clients)}
        counter = itertools.count()
        for i in range(ops):
            client = min(clock, key=lambda c: clock[c] + rng.random() * 0.002)
            kind = rng.choice(kinds)
            key = rng.choice(key_names)
            value = expected = None
            if kind in ("put", "cas"):
                value = f"v-{client}-{i}"
            if kind == "cas":
                recent = written[key][-3:]
                expected = rng.choice(recent + [None]) if recent else None
            if value is not None:
                written[key].append(value)
            nonces[client] += 1
            t0 = clock[client]
            dur = rng.uniform(0.0005, 0.01)
            oid = next(counter)
            op = Op(id=oid, client=client, op=kind, key=key, value=value, expected=expected,
                    invoke_s=round(t0, 6), complete_s=round(t0 + dur, 6), result="ok",
                    nonce=nonces[client], op_index=0, client_key=_client_key(client))
            r = rng.random()
            lin = op.invoke_s + rng.random() * (op.complete_s - op.invoke_s)
            if r < p_fail:
                op.result = "fail"
                lin = None
            elif r < p_fail + p_timeout:
                op.result = "timeout"
                op.complete_s = None
                # applied, maybe long after the client gave up, or never
                lin = op.invoke_s + rng.random() * dur * 4 if rng.random() < 0.6 else None
                dur = dur * 2
            pending.append((op, lin))
            clock[client] = t0 + dur + rng.uniform(0, 0.003)
        self.ops = [p[0] for p in pending]
        applied = sorted((p for p in pending if p[1] is not None), key=lambda p: p[1])
        self.order = [p[0] for p in applied]
        kv: dict = {}
        self.log_outputs = {}
        for op in self.order:
            out = apply_op(kv, op)
            self.log_outputs[op.id] = out
            if op.result == "ok":
                op.output = out
        self.final = kv


def _client_key(client: str) -> str:
    return hashlib.sha256(client.encode()).hexdigest()


def apply_op(kv: dict, op: Op) -> dict:
    cur = kv.get(op.key)
    if op.op == "put":
        kv[op.key] = op.value
        return {"previous": cur}
    if op.op == "del":
        kv.pop(op.key, None)
        return {"previous": cur}
    if op.op == "get":
        return {"value": cur}
    swapped = cur == op.expected
    if swapped:
        kv[op.key] = op.value
    return {"swapped": swapped, "previous": cur}


def _h(s):
    return None if s is None else s.encode().hex()


def log_request(op: Op, status: str = "committed", outputs=None) -> dict:
    """A committed-log request (docs/checkers.md) for a one-op request."""
    return {
        "client": op.client_key, "nonce": op.nonce, "status": status,
        # The workload's PUT and DEL ask for the previous value (docs/checkers.md).
        "ops": [{"op": op.op, "key": _h(op.key), "value": _h(op.value), "expected": _h(op.expected),
                 **({"previous": True} if op.op in ("put", "del") else {})}],
        "outputs": [] if outputs is None else outputs,
    }


def build_log(order, seed: int = 0, extras=None) -> list:
    """Epoch records for the ops in `order` (commit order), replaying them
    through the model to compute outputs, grouped into epochs of 0..6
    requests, with a hash chain for the digests. `extras` maps a position in
    `order` to additional raw requests appended after it (duplicates etc.)."""
    rng = random.Random(seed)
    kv: dict = {}
    reqs = []
    stored = {}
    for i, op in enumerate(order):
        if isinstance(op, dict):  # a raw request
            reqs.append(op)
            continue
        out = apply_op(kv, op)
        if op.op == "cas":
            lo = [{"ok": out["swapped"], "value": _h(out["previous"])}]
        else:
            lo = [{"ok": True, "value": _h(out.get("previous", out.get("value")))}]
        reqs.append(log_request(op, outputs=lo))
        stored[(op.client_key, op.nonce)] = (op, lo)
        for extra in (extras or {}).get(i, []):
            reqs.append(extra(stored) if callable(extra) else extra)
    epochs = []
    state = "00" * 32
    i = 0
    e = 1
    while i < len(reqs) or e == 1:
        k = rng.randint(0, 6)
        chunk = reqs[i:i + k]
        i += k
        od = hashlib.sha256(json.dumps(chunk, sort_keys=True).encode()).hexdigest()
        state = hashlib.sha256((state + od).encode()).hexdigest()
        epochs.append({"epoch": e, "output_digest": od, "state_digest": state, "requests": chunk})
        e += 1
    return epochs


def rechain(epochs: list, start: int = 0) -> None:
    """Recomputes the digests from index `start` on (after an edit)."""
    state = epochs[start - 1]["state_digest"] if start > 0 else "00" * 32
    for ep in epochs[start:]:
        ep["output_digest"] = hashlib.sha256(json.dumps(ep["requests"], sort_keys=True).encode()).hexdigest()
        state = hashlib.sha256((state + ep["output_digest"]).encode()).hexdigest()
        ep["state_digest"] = state


def parse(epochs: list) -> list:
    return [logcheck.parse_epoch(copy.deepcopy(d)) for d in epochs]


def node_logs(epochs: list) -> dict:
    """Four honest nodes: two complete, one lagging, one restored from a
    snapshot (its dump starts later)."""
    n = len(epochs)
    return {
        "node0": parse(epochs),
        "node1": parse(epochs),
        "node2": parse(epochs[: max(1, n * 2 // 3)]),
        "node3": parse(epochs[min(4, n - 1):]),
    }


# ---------------------------------------------------------------------------
# A brute-force reference checker (permutations) for small histories.


def brute_linearizable(ops) -> bool:
    live = [o for o in ops if o.result != "fail"]
    required = [o for o in live if o.result == "ok"]
    maybe = [o for o in live if o.result == "timeout"]
    by_key = {}
    for o in live:
        by_key.setdefault(o.key, []).append(o)
    for key, kops in by_key.items():
        req = [o for o in kops if o.result == "ok"]
        may = [o for o in kops if o.result == "timeout"]
        found = False
        for r in range(len(may) + 1):
            for subset in itertools.combinations(may, r):
                chosen = req + list(subset)
                for perm in itertools.permutations(chosen):
                    if _valid_seq(perm):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        if not found:
            return False
    del required, maybe
    return True


def _valid_seq(seq) -> bool:
    for i, a in enumerate(seq):
        for b in seq[i + 1:]:
            if b.result == "ok" and b.complete_s < a.invoke_s:
                return False  # b precedes a in real time
    state = None
    for o in seq:
        known = o.result == "ok"
        if o.op == "get":
            if known and "value" in o.output and o.output["value"] != state:
                return False
            continue
        if known and "previous" in o.output and o.output["previous"] != state:
            return False
        if o.op == "put":
            state = o.value
        elif o.op == "del":
            state = None
        else:
            sw = state == o.expected
            if known and "swapped" in o.output and o.output["swapped"] != sw:
                return False
            if sw:
                state = o.value
    return True


def small_history(rng: random.Random, n_max: int = 7, values=("a", "b", "c")) -> list:
    """A small one-key history with repeated values: a linearizable execution
    (random linearization points, timeouts applied or not, missing output
    fields) that is then, half of the time, perturbed."""
    n = rng.randint(1, n_max)
    ops, points = [], []
    for i in range(n):
        kind = rng.choice(["put", "get", "cas", "del"])
        t0 = rng.randint(0, 10)
        t1 = t0 + rng.randint(0, 5)
        r = rng.random()
        result = "timeout" if r < 0.25 else "fail" if r < 0.3 else "ok"
        o = Op(id=i, client=f"c{i}", op=kind, key="k",
               value=rng.choice(values) if kind in ("put", "cas") else None,
               expected=rng.choice(values + (None,)) if kind == "cas" else None,
               invoke_s=t0, complete_s=None if result == "timeout" else t1, result=result)
        ops.append(o)
        if result == "ok" or (result == "timeout" and rng.random() < 0.6):
            hi = t1 if result == "ok" else t0 + 8
            points.append((rng.uniform(t0, hi), i))
    kv: dict = {}
    for _, i in sorted(points):
        out = apply_op(kv, ops[i])
        if ops[i].result == "ok":
            if rng.random() < 0.1:
                out.pop(rng.choice(list(out)))
            ops[i].output = out
    if rng.random() < 0.5:
        oks = [o for o in ops if o.result == "ok" and o.output]
        if oks:
            o = rng.choice(oks)
            f = rng.choice(list(o.output))
            o.output[f] = (not o.output[f]) if f == "swapped" else rng.choice(values + (None,))
    return ops


def mk(id, client, op, key, invoke, complete, value=None, expected=None, result="ok", **out):
    return Op(id=id, client=client, op=op, key=key, value=value, expected=expected,
              invoke_s=invoke, complete_s=None if result == "timeout" else complete,
              result=result, output=out if result == "ok" else {})


# ---------------------------------------------------------------------------


class HistoryFormatTest(unittest.TestCase):
    def test_writer_reader_roundtrip(self):
        t = [0.0]

        def clock():
            t[0] += 1.0
            return t[0]

        buf = io.StringIO()
        w = HistoryWriter(buf, clock=clock)
        a = w.invoke("c1", "put", "k", value="v1", nonce=1, op_index=0, client_key="ab")
        b = w.invoke("c2", "get", "k", nonce=1)
        c = w.invoke("c3", "cas", "k", value="v2", expected=None, nonce=4)
        d = w.invoke("c4", "del", "k")
        w.complete(a, "ok", {"previous": None})
        w.complete(b, "ok", {"value": "v1"})
        w.complete(d, "fail")
        w.close()  # c stays pending -> timeout
        buf.seek(0)
        ops = {o.id: o for o in read_history(buf)}
        self.assertEqual(len(ops), 4)
        self.assertEqual(ops[a].result, "ok")
        self.assertEqual(ops[a].invoke_s, 1.0)
        self.assertEqual(ops[a].complete_s, 5.0)
        self.assertEqual(ops[a].client_id, "ab")
        self.assertEqual(ops[b].output, {"value": "v1"})
        self.assertEqual(ops[c].result, "timeout")
        self.assertIsNone(ops[c].complete_s)
        self.assertEqual(ops[c].nonce, 4)
        self.assertEqual(ops[d].result, "fail")
        self.assertEqual(w.counts, {"ok": 2, "fail": 1, "timeout": 1})

    def test_rejects_bad_records(self):
        good = mk(1, "c", "put", "k", 0.0, 1.0, value="v", previous=None).to_json()
        for patch in ({"op": "inc"}, {"result": "maybe"}, {"value": None},
                      {"complete_s": None}, {"output": {"value": "x"}}, {"expected": "e"},
                      {"complete_s": -1.0}):
            bad = dict(good, **patch)
            with self.assertRaises(history.HistoryError, msg=str(patch)):
                read_history(io.StringIO(json.dumps(bad) + "\n"))
        with self.assertRaises(history.HistoryError):
            read_history(io.StringIO(json.dumps(good) + "\n" + json.dumps(good) + "\n"))

    def test_file_roundtrip(self):
        sim = Sim(1, ops=50)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "h.jsonl")
            write_history(p, sim.ops)
            back = read_history(p)
        self.assertEqual([o.to_json() for o in back], [o.to_json() for o in sim.ops])


class LincheckValidTest(unittest.TestCase):
    def test_simulated_histories_pass(self):
        for seed in range(40):
            sim = Sim(seed, clients=2 + seed % 6, keys=1 + seed % 4, ops=150 + 10 * (seed % 7))
            res = lincheck.check_history(sim.ops)
            self.assertEqual(res.status, "ok",
                             f"seed {seed}: " + "\n".join(r.explain() for r in res.failures))

    def test_high_concurrency_and_many_timeouts(self):
        for seed in range(5):
            sim = Sim(100 + seed, clients=12, keys=1, ops=400, p_timeout=0.15, p_fail=0.05)
            res = lincheck.check_history(sim.ops)
            self.assertEqual(res.status, "ok", f"seed {seed}")

    def test_thousands_of_ops_per_key_within_seconds(self):
        sim = Sim(7, clients=8, keys=1, ops=3000, p_timeout=0.02)
        t0 = time.monotonic()
        res = lincheck.check_history(sim.ops)
        dt = time.monotonic() - t0
        self.assertEqual(res.status, "ok")
        self.assertLess(dt, 20.0, f"3000 ops on one key took {dt:.1f}s")

    def test_non_unique_values_are_fine(self):
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="x", previous=None),
            mk(1, "a", "put", "k", 2, 3, value="y", previous="x"),
            mk(2, "a", "put", "k", 4, 5, value="x", previous="y"),
            None,
            mk(4, "b", "cas", "k", 8, 9, value="x", expected="x", swapped=True, previous="x"),
        ]
        ops[3] = Op(id=3, client="b", op="get", key="k", invoke_s=6, complete_s=7, output={"value": "x"})
        self.assertEqual(lincheck.check_history(ops).status, "ok")
        # ... and a stale read with repeated values is still caught
        ops.append(Op(id=5, client="b", op="get", key="k", invoke_s=10, complete_s=11, output={"value": "y"}))
        self.assertEqual(lincheck.check_history(ops).status, "fail")

    def test_matches_brute_force_on_small_random_histories(self):
        rng = random.Random(4242)
        values = ["a", "b", None]
        disagreements = []
        n_fail = 0
        for trial in range(1500):
            ops = []
            for i in range(rng.randint(1, 6)):
                kind = rng.choice(["put", "get", "cas", "del"])
                t0 = rng.randint(0, 8)
                t1 = t0 + rng.randint(0, 4)
                r = rng.random()
                result = "timeout" if r < 0.15 else "fail" if r < 0.2 else "ok"
                out = {}
                if kind == "get":
                    out = {"value": rng.choice(values)}
                elif kind == "cas":
                    out = {"swapped": rng.random() < 0.5, "previous": rng.choice(values)}
                else:
                    out = {"previous": rng.choice(values)}
                if rng.random() < 0.1:
                    out.pop(next(iter(out)))
                ops.append(Op(id=i, client=f"c{i}", op=kind, key=rng.choice(["k", "k", "j"]),
                              value=rng.choice(["a", "b"]) if kind in ("put", "cas") else None,
                              expected=rng.choice(values) if kind == "cas" else None,
                              invoke_s=t0, complete_s=None if result == "timeout" else t1,
                              result=result, output=out if result == "ok" else {}))
            want = brute_linearizable(ops)
            got = lincheck.check_history(ops).status
            n_fail += not want
            if got != ("ok" if want else "fail"):
                disagreements.append((trial, want, got, [o.to_json() for o in ops]))
        self.assertFalse(disagreements, disagreements[:2])
        self.assertGreater(n_fail, 100)  # the random cases exercise both answers

    def test_matches_brute_force_on_near_linearizable_histories(self):
        rng = random.Random(77)
        counts = {True: 0, False: 0}
        for trial in range(3000):
            ops = small_history(rng)
            want = brute_linearizable(ops)
            counts[want] += 1
            got = lincheck.check_history(ops).status
            self.assertEqual(got, "ok" if want else "fail", [o.to_json() for o in ops])
        self.assertGreater(min(counts.values()), 300, counts)

    def test_counterexample_window_is_itself_a_counterexample(self):
        rng = random.Random(78)
        checked = 0
        for trial in range(1500):
            ops = small_history(rng)
            res = lincheck.check_history(ops)
            if res.status != "fail":
                continue
            f = res.failures[0]
            es = [lincheck._Entry(o, relaxed=r == lincheck.ROLE_IGNORED,
                                  optional=r == lincheck.ROLE_IN_FLIGHT) for o, r in f.window]
            init = frozenset([None] if f.initial_states is None else f.initial_states)
            self.assertEqual(lincheck._check_entries(es, init, 10**6).status, "fail",
                             [o.to_json() for o in ops])
            self.assertIn(f.culprit, [o for o, _ in f.window])
            checked += 1
        self.assertGreater(checked, 200)


class LincheckPlantedTest(unittest.TestCase):
    def assert_caught(self, ops, key=None):
        res = lincheck.check_history(ops)
        self.assertEqual(res.status, "fail")
        if key is not None:
            self.assertEqual(res.failures[0].key, key)
        f = res.failures[0]
        self.assertTrue(f.window)
        self.assertIsNotNone(f.culprit)
        return f

    def test_reordered_writes(self):
        # w1 then w2 (sequential); a read sees v2, a later read sees v1.
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="v1", previous=None),
            mk(1, "a", "put", "k", 2, 10, value="v2", previous="v1"),
            Op(id=2, client="b", op="get", key="k", invoke_s=3, complete_s=4, output={"value": "v2"}),
            Op(id=3, client="c", op="get", key="k", invoke_s=5, complete_s=6, output={"value": "v1"}),
        ]
        f = self.assert_caught(ops, "k")
        self.assertEqual(f.culprit.id, 3)
        # the writes reported in the wrong order by their own outputs
        ops2 = [
            mk(0, "a", "put", "k", 0, 1, value="v1", previous="v2"),
            mk(1, "a", "put", "k", 2, 3, value="v2", previous=None),
        ]
        self.assert_caught(ops2, "k")

    def test_stale_read(self):
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="v1", previous=None),
            mk(1, "a", "put", "k", 2, 3, value="v2", previous="v1"),
            Op(id=2, client="b", op="get", key="k", invoke_s=4, complete_s=5, output={"value": "v1"}),
        ]
        f = self.assert_caught(ops, "k")
        self.assertEqual(f.culprit.id, 2)

    def test_impossible_cas(self):
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="a", previous=None),
            mk(1, "a", "put", "k", 2, 3, value="b", previous="a"),
            mk(2, "b", "cas", "k", 4, 5, value="c", expected="a", swapped=True, previous="a"),
        ]
        self.assert_caught(ops, "k")
        # swapped with a previous that differs from expected
        ops2 = [mk(0, "a", "put", "k", 0, 1, value="a", previous=None),
                mk(1, "b", "cas", "k", 2, 3, value="c", expected="b", swapped=True, previous="a")]
        self.assert_caught(ops2, "k")

    def test_planted_in_random_histories(self):
        caught = {"stale": 0, "cas": 0, "reorder": 0}
        for seed in range(25):
            sim = Sim(500 + seed, clients=4, keys=2, ops=250)
            ops = sim.ops
            by_id = {o.id: o for o in ops}
            # stale read: a get invoked after w2 completed, where w1 completed before w2 was invoked
            planted = self._plant_stale(ops)
            if planted is not None:
                bad = copy.deepcopy(ops)
                {o.id: o for o in bad}[planted[0]].output = {"value": planted[1]}
                self.assertEqual(lincheck.check_history(bad).status, "fail", f"stale seed {seed}")
                caught["stale"] += 1
            # CAS that reports swapped although it could not have: flip a failed CAS
            cas = [o for o in ops if o.op == "cas" and o.result == "ok" and not o.output["swapped"]]
            if cas:
                bad = copy.deepcopy(ops)
                b = {o.id: o for o in bad}[cas[0].id]
                b.output = {"swapped": True, "previous": b.expected}
                # it may have been possible if the expected value was current at some point
                # in its interval; only count the cases where that is impossible
                if not brute_window_possible(ops, b):
                    self.assertEqual(lincheck.check_history(bad).status, "fail", f"cas seed {seed}")
                    caught["cas"] += 1
            # reorder: swap the outputs of two sequential puts on one key
            seq = self._sequential_puts(ops)
            if seq:
                bad = copy.deepcopy(ops)
                m = {o.id: o for o in bad}
                a, b = m[seq[0]], m[seq[1]]
                a.output, b.output = {"previous": b.value}, {"previous": by_id[seq[0]].output["previous"]}
                self.assertEqual(lincheck.check_history(bad).status, "fail", f"reorder seed {seed}")
                caught["reorder"] += 1
        for k, v in caught.items():
            self.assertGreater(v, 5, f"too few planted {k} cases ({v})")

    @staticmethod
    def _plant_stale(ops):
        ok = [o for o in ops if o.result == "ok"]
        for g in ok:
            if g.op != "get" or g.output["value"] is None:
                continue
            w2 = next((o for o in ok if o.op == "put" and o.value == g.output["value"]), None)
            if w2 is None or w2.complete_s >= g.invoke_s:
                continue
            w1 = next((o for o in ok if o.key == g.key and o.op == "put" and o.value != w2.value
                       and o.complete_s < w2.invoke_s), None)
            if w1 is not None:
                return g.id, w1.value
        return None

    @staticmethod
    def _sequential_puts(ops):
        ok = [o for o in ops if o.result == "ok" and o.op == "put"]
        for a in ok:
            for b in ok:
                if a.key == b.key and b.output["previous"] == a.value and a.complete_s < b.invoke_s:
                    return a.id, b.id
        return None


def brute_window_possible(ops, cas_op) -> bool:
    """Whether cas_op's expected value could be current during its interval,
    judged coarsely: some write of that value is not known to be overwritten
    before the CAS was invoked. Conservative (returns True when unsure)."""
    if cas_op.expected is None:
        return True
    writers = [o for o in ops if o.key == cas_op.key and o.value == cas_op.expected and o.result != "fail"]
    for w in writers:
        if w.result != "ok":
            return True
        later = [o for o in ops if o.key == cas_op.key and o.result == "ok" and o.op in ("put", "del")
                 and o.invoke_s > w.complete_s and o.complete_s < cas_op.invoke_s]
        if not later:
            return True
    return not writers


class LincheckTimeoutTest(unittest.TestCase):
    def test_timed_out_write_seen_later_is_accepted(self):
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="v1", previous=None),
            mk(1, "b", "put", "k", 2, None, value="v2", result="timeout"),
            Op(id=2, client="c", op="get", key="k", invoke_s=50, complete_s=51, output={"value": "v2"}),
            mk(3, "c", "put", "k", 52, 53, value="v3", previous="v2"),
        ]
        self.assertEqual(lincheck.check_history(ops).status, "ok")

    def test_timed_out_write_never_seen_is_accepted(self):
        ops = [
            mk(0, "a", "put", "k", 0, 1, value="v1", previous=None),
            mk(1, "b", "put", "k", 2, None, value="v2", result="timeout"),
            mk(2, "b", "cas", "k", 2.5, None, value="v9", expected="v1", result="timeout"),
            Op(id=3, client="c", op="get", key="k", invoke_s=50, complete_s=51, output={"value": "v1"}),
            mk(4, "c", "put", "k", 52, 53, value="v3", previous="v1"),
        ]
        self.assertEqual(lincheck.check_history(ops).status, "ok")

    def test_timed_out_write_seen_before_invocation_is_caught(self):
        ops = [
            Op(id=0, client="c", op="get", key="k", invoke_s=0, complete_s=1, output={"value": "v2"}),
            mk(1, "b", "put", "k", 2, None, value="v2", result="timeout"),
        ]
        self.assertEqual(lincheck.check_history(ops).status, "fail")

    def test_failed_op_is_never_applied(self):
        ops = [
            mk(0, "b", "put", "k", 0, 1, value="v2", result="fail"),
            Op(id=1, client="c", op="get", key="k", invoke_s=5, complete_s=6, output={"value": "v2"}),
        ]
        self.assertEqual(lincheck.check_history(ops).status, "fail")


class LincheckBudgetAndCliTest(unittest.TestCase):
    def test_budget_exceeded_is_unknown(self):
        sim = Sim(3, clients=10, keys=1, ops=400, p_timeout=0.3)
        res = lincheck.check_history(sim.ops, budget=50)
        self.assertEqual(res.status, "unknown")
        self.assertFalse(res.ok())
        self.assertTrue(res.ok(allow_unknown=True))

    def _cli(self, ops, *extra):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "h.jsonl")
            write_history(p, ops)
            return subprocess.run([sys.executable, os.path.join(HERE, "lincheck.py"), p, *extra],
                                  capture_output=True, text=True, timeout=120)

    def test_cli(self):
        sim = Sim(11, clients=4, keys=3, ops=200)
        r = self._cli(sim.ops)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), f"linearizable keys=3 ops={len(sim.ops)}")
        r = self._cli(sim.ops, "--json")
        self.assertEqual(json.loads(r.stdout)["linearizable"], True)

        bad = copy.deepcopy(sim.ops)
        t = max(o.complete_s or o.invoke_s for o in bad) + 1
        bad += [mk(10_000, "z", "put", "k1", t, t + 1, value="late", previous=None)]
        r = self._cli(bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT linearizable", r.stdout)
        self.assertIn("first_key=k1", r.stdout)
        self.assertIn("culprit: #10000", r.stdout)
        # the window is short: it starts at a quiescent point, not at the beginning
        window = [l for l in r.stdout.split("and ops with unknown outcome")[0].splitlines()
                  if l.startswith("    #")]
        self.assertLess(len(window), 10, r.stdout)
        r = self._cli(bad, "--json")
        self.assertEqual(r.returncode, 1)
        j = json.loads(r.stdout)
        self.assertEqual(j["failures"][0]["key"], "k1")

        r = self._cli(Sim(3, clients=10, keys=1, ops=400, p_timeout=0.3).ops, "--budget", "50")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown", r.stdout)
        r = self._cli(Sim(3, clients=10, keys=1, ops=400, p_timeout=0.3).ops, "--budget", "50",
                      "--allow-unknown")
        self.assertEqual(r.returncode, 0)


# ---------------------------------------------------------------------------


class LogcheckTest(unittest.TestCase):
    def sim(self, seed):
        return Sim(seed, clients=4, keys=3, ops=200, p_timeout=0.05, p_fail=0.03)

    def violations(self, logs, hist, **kw):
        rep = logcheck.check_logs(logs, hist, **kw)
        return rep, {c for c, _ in rep.violations}

    def test_valid_logs_pass(self):
        for seed in range(15):
            sim = self.sim(seed)
            # a retry answered as a duplicate, and a malformed request from a rogue client
            first = sim.order[0]
            dup = lambda st, o=first: dict(log_request(o, "duplicate", outputs=st[(o.client_key, o.nonce)][1]))
            junk = {"client": "ff" * 32, "nonce": 1, "status": "malformed", "ops": [{"op": "zap"}], "outputs": []}
            epochs = build_log(sim.order, seed, extras={3: [dup, junk]})
            rep, kinds = self.violations(node_logs(epochs), sim.ops, strict_origin=True)
            self.assertTrue(rep.ok, f"seed {seed}: {rep.violations[:3]}")
            self.assertEqual(rep.stats["replayed"], "yes")
            self.assertEqual(rep.stats["lost"], 0)

    def test_lost_acknowledged_write(self):
        sim = self.sim(1)
        victim = next(o for o in sim.order if o.op == "put" and o.result == "ok")
        order = [o for o in sim.order if o is not victim]
        rep, kinds = self.violations(node_logs(build_log(order, 1)), sim.ops)
        self.assertIn("lost", kinds)
        self.assertTrue(any(f"#{victim.id} " in m for c, m in rep.violations if c == "lost"))

    def test_duplicated_op_in_log(self):
        sim = self.sim(2)
        victim = next(o for o in sim.order if o.op == "put" and o.result == "ok")
        pos = sim.order.index(victim)
        order = sim.order[: pos + 5] + [victim] + sim.order[pos + 5:]
        rep, kinds = self.violations(node_logs(build_log(order, 2)), sim.ops)
        self.assertIn("once", kinds)
        # also without the history: the dedup replay alone sees it
        rep, kinds = self.violations(node_logs(build_log(order, 2)), None)
        self.assertIn("once", kinds)

    def test_diverging_log_on_one_node(self):
        sim = self.sim(3)
        epochs = build_log(sim.order, 3)
        logs = node_logs(epochs)
        bad = copy.deepcopy(epochs)
        k = next(i for i, e in enumerate(bad) if len(e["requests"]) >= 2 and i > 5)
        bad[k]["requests"].reverse()
        rechain(bad, k)
        logs["node1"] = parse(bad)
        rep, kinds = self.violations(logs, sim.ops)
        self.assertIn("prefix", kinds)
        self.assertTrue(any("node1" in m and f"epoch {k + 1}" in m for c, m in rep.violations))

    def test_equal_outputs_different_state_digest(self):
        sim = self.sim(4)
        epochs = build_log(sim.order, 4)
        logs = node_logs(epochs)
        bad = copy.deepcopy(epochs)
        bad[7]["state_digest"] = "ab" * 32
        logs["node2"] = parse(bad[: len(logs["node2"])])
        rep, kinds = self.violations(logs, sim.ops)
        self.assertEqual(kinds, {"digest"})

    def test_gap_in_a_log(self):
        sim = self.sim(5)
        epochs = build_log(sim.order, 5)
        logs = node_logs(epochs)
        logs["node1"] = parse(epochs[:5] + epochs[6:])
        rep, kinds = self.violations(logs, sim.ops)
        self.assertIn("prefix", kinds)

    def test_replay_catches_wrong_committed_output(self):
        sim = self.sim(6)
        epochs = build_log(sim.order, 6)
        for ep in epochs[3:]:
            for r in ep["requests"]:
                if r["ops"][0]["op"] == "get":
                    r["outputs"][0]["value"] = "dead"
                    break
            else:
                continue
            break
        rechain(epochs)
        rep, kinds = self.violations(node_logs(epochs), None)
        self.assertEqual(kinds, {"replay"})

    def test_acked_read_disagrees_with_log(self):
        sim = self.sim(7)
        epochs = build_log(sim.order, 7)
        hist = copy.deepcopy(sim.ops)
        g = next(o for o in hist if o.op == "get" and o.result == "ok" and o.output["value"] is not None)
        g.output = {"value": None}
        rep, kinds = self.violations(node_logs(epochs), hist)
        self.assertEqual(kinds, {"output"})

    def test_failed_op_committed(self):
        sim = self.sim(8)
        hist = copy.deepcopy(sim.ops)
        o = next(o for o in hist if o.result == "ok" and o.op == "put")
        o.result, o.output = "fail", {}
        rep, kinds = self.violations(node_logs(build_log(sim.order, 8)), hist)
        self.assertIn("once", kinds)

    def test_timed_out_ops_need_not_commit(self):
        sim = self.sim(9)
        timeouts = [o for o in sim.ops if o.result == "timeout"]
        self.assertTrue(timeouts)
        applied = {o.id for o in sim.order}
        self.assertTrue(any(o.id in applied for o in timeouts) or any(o.id not in applied for o in timeouts))
        rep, _ = self.violations(node_logs(build_log(sim.order, 9)), sim.ops)
        self.assertTrue(rep.ok, rep.violations[:3])

    def test_unsubmitted_request_with_strict_origin(self):
        sim = self.sim(10)
        rogue = copy.deepcopy(next(o for o in sim.order if o.op == "put"))
        rogue.nonce = 99_999
        rogue.value = "forged"
        order = sim.order + [rogue]
        rep, kinds = self.violations(node_logs(build_log(order, 10)), sim.ops, strict_origin=True)
        self.assertEqual(kinds, {"origin"})

    def test_cli(self):
        sim = self.sim(12)
        epochs = build_log(sim.order, 12)
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i, eps in enumerate([epochs, epochs, epochs[:10]]):
                p = os.path.join(d, f"node{i}.jsonl")
                with open(p, "w") as f:
                    for e in eps:
                        f.write(json.dumps(e) + "\n")
                paths.append(p)
            h = os.path.join(d, "h.jsonl")
            write_history(h, sim.ops)
            cmd = [sys.executable, os.path.join(HERE, "logcheck.py"), "--history", h]
            for p in paths:
                cmd += ["--log", p]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("logs consistent", r.stdout)
            # diverge node2 at its last epoch
            bad = copy.deepcopy(epochs[:10])
            bad[9]["output_digest"] = "00" * 32
            with open(paths[2], "w") as f:
                for e in bad:
                    f.write(json.dumps(e) + "\n")
            r = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            j = json.loads(r.stdout)
            self.assertFalse(j["ok"])
            self.assertEqual(j["violations"][0]["check"], "prefix")
            with open(paths[2], "w") as f:
                f.write("{not json\n")
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2)


class SanitizerReportTest(unittest.TestCase):
    """cluster.sanitizer_report: the sanitizer builds (make sanitize, make tsan) fail a
    cluster test when a node log holds a report; a clean log passes."""

    CLEAN = ("[2024-05-01 10:00:00.000] [tobd] [info] tobd 0.1.0 node 0 of n=4\n"
             "[2024-05-01 10:00:01.000] [tobd] [warn] fault by node 3: bad envelope signature\n")

    def test_each_sanitizers_report_is_found(self):
        from cluster import sanitizer_report
        reports = {
            "==1234==WARNING: ThreadSanitizer: data race (pid=1234)": "ThreadSanitizer",
            "==1234==ERROR: AddressSanitizer: heap-use-after-free on address 0x6": "AddressSanitizer",
            "==1234==ERROR: LeakSanitizer: detected memory leaks": "LeakSanitizer",
            "daemon/node.cpp:88:5: runtime error: signed integer overflow": "runtime error",
            "SUMMARY: ThreadSanitizer: data race daemon/metrics.cpp:40 in inc": "ThreadSanitizer",
        }
        for line, word in reports.items():
            text = self.CLEAN + line + "\n    #0 tob::daemon::f() daemon/x.cpp:1\n" + self.CLEAN
            found = sanitizer_report(text)
            self.assertIsNotNone(found, line)
            self.assertIn(word, found)
            self.assertEqual(found, line)  # the whole first line of the report

    def test_a_clean_log_has_no_report(self):
        from cluster import sanitizer_report
        self.assertIsNone(sanitizer_report(self.CLEAN))
        self.assertIsNone(sanitizer_report(""))
        # The word alone (e.g. in a path or a help text) is not a report.
        self.assertIsNone(sanitizer_report("built with -fsanitize=thread (ThreadSanitizer)\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
