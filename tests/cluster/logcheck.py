#!/usr/bin/env python3
"""Log checker: honest nodes' committed logs against each other, against a
replay through the KV model, and against the client history.

Input (formats in docs/checkers.md):
  * per node a committed-log dump, JSON lines, one epoch per line:
      {"epoch": 3, "output_digest": HEX, "state_digest": HEX,
       "requests": [{"client": HEX, "nonce": 5, "status": "committed",
                     "ops": [{"op": "put", "key": HEX, "value": HEX, "expected": null}],
                     "outputs": [{"ok": true, "value": HEX|null}]}]}
    (byte strings -- keys, values, expected, output values -- are lowercase hex)
  * the client history (history.py), optional.

Checks:
  (a) prefix:  every pair of logs agrees on every epoch both hold (equal
      output_digest, state_digest and requests), so one is a prefix of the
      other; each log is contiguous.
  (d) digests: state digests are equal at equal epochs (reported separately).
  (c) replay:  the union of the logs, from epoch 1, replayed through the KV
      model and the dedup rule (docs/protocol.md, "Replicated database")
      reproduces every recorded output and status; every acknowledged op's
      output in the history equals the log's.
  (b) once:    every acknowledged op (result ok, with a nonce) appears exactly
      once among committed requests, identified by (client, nonce, op_index),
      and with the same op; no (client, nonce) commits twice; an op whose
      result is "fail" never commits. With --strict-origin, a committed request
      of a client that the history knows must be in the history.

CLI:  logcheck.py --log node0.jsonl [--log NAME=node1.jsonl ...] [--history h.jsonl]
                  [--json] [--strict-origin]
      exit 0 clean, 1 violations, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from history import HistoryError, Op, read_history  # noqa: E402

DEDUP_WINDOW = 1024
# forbidden: skipped on every node by the cluster's [permissions] (docs/security.md);
# like malformed it applies nothing and keeps its nonce.
STATUSES = ("committed", "duplicate", "malformed", "forbidden")
OP_TYPES = ("put", "del", "cas", "get")


class LogError(ValueError):
    """A log dump that does not follow the format."""


def _hex(s: Optional[str]) -> Optional[str]:
    return None if s is None else s.encode("utf-8").hex()


def _unhex(h: Optional[str]) -> str:
    if h is None:
        return "nil"
    try:
        b = bytes.fromhex(h)
        t = b.decode("utf-8")
        if t.isprintable():
            return t
    except ValueError:
        pass
    return "0x" + h


def _is_hex(s, length: Optional[int] = None) -> bool:
    if not isinstance(s, str) or len(s) % 2:
        return False
    if length is not None and len(s) != length:
        return False
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


@dataclass
class Epoch:
    epoch: int
    output_digest: str
    state_digest: str
    requests: list  # list[dict] as in the dump (hex normalised to lowercase)

    def same_content(self, other: "Epoch") -> bool:
        return self.requests == other.requests


def _check_request(r: dict, where: str) -> dict:
    if not isinstance(r, dict):
        raise LogError(f"{where}: a request must be an object")
    for k in ("client", "nonce", "status"):
        if k not in r:
            raise LogError(f"{where}: request without {k!r}")
    if not _is_hex(r["client"]):
        raise LogError(f"{where}: client must be hex")
    if not isinstance(r["nonce"], int) or r["nonce"] < 0:
        raise LogError(f"{where}: nonce must be a non-negative integer")
    if r["status"] not in STATUSES:
        raise LogError(f"{where}: unknown status {r['status']!r}")
    ops = r.get("ops") or []
    outs = r.get("outputs") or []
    if not isinstance(ops, list) or not isinstance(outs, list):
        raise LogError(f"{where}: ops and outputs must be arrays")
    norm_ops = []
    for j, o in enumerate(ops):
        if not isinstance(o, dict):
            raise LogError(f"{where} op {j}: must be an object")
        if r["status"] not in ("malformed", "forbidden"):
            if o.get("op") not in OP_TYPES:
                raise LogError(f"{where} op {j}: unknown op {o.get('op')!r}")
            for k in ("key", "value", "expected"):
                v = o.get(k)
                if v is not None and not _is_hex(v):
                    raise LogError(f"{where} op {j}: {k} must be hex or null")
            if not isinstance(o.get("key"), str):
                raise LogError(f"{where} op {j}: key missing")
            if o["op"] in ("put", "cas") and o.get("value") is None:
                raise LogError(f"{where} op {j}: {o['op']} needs a value")
        norm_ops.append({
            "op": o.get("op"),
            "key": o["key"].lower() if isinstance(o.get("key"), str) else o.get("key"),
            "value": o["value"].lower() if isinstance(o.get("value"), str) else o.get("value"),
            "expected": o["expected"].lower() if isinstance(o.get("expected"), str) else o.get("expected"),
        })
    norm_outs = []
    for j, o in enumerate(outs):
        if not isinstance(o, dict) or not isinstance(o.get("ok"), bool):
            raise LogError(f"{where} output {j}: must be {{\"ok\": bool, \"value\": hex|null}}")
        v = o.get("value")
        if v is not None and not _is_hex(v):
            raise LogError(f"{where} output {j}: value must be hex or null")
        norm_outs.append({"ok": o["ok"], "value": v.lower() if v is not None else None})
    out = {"client": r["client"].lower(), "nonce": r["nonce"], "status": r["status"],
           "ops": norm_ops, "outputs": norm_outs}
    return out


def load_log(path: str) -> list:
    """Reads a node's committed-log dump: list[Epoch], validated."""
    epochs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{lineno}"
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogError(f"{where}: not JSON: {e}") from None
            epochs.append(parse_epoch(d, where))
    return epochs


def parse_epoch(d: dict, where: str = "<epoch>") -> Epoch:
    if not isinstance(d, dict):
        raise LogError(f"{where}: an epoch must be an object")
    try:
        e = int(d["epoch"])
        od, sd = d["output_digest"], d["state_digest"]
        reqs = d.get("requests") or []
    except (KeyError, TypeError, ValueError) as ex:
        raise LogError(f"{where}: bad epoch record: {ex}") from None
    if e < 1:
        raise LogError(f"{where}: epochs start at 1")
    if not _is_hex(od) or not _is_hex(sd):
        raise LogError(f"{where}: digests must be hex")
    if not isinstance(reqs, list):
        raise LogError(f"{where}: requests must be an array")
    return Epoch(e, od.lower(), sd.lower(),
                 [_check_request(r, f"{where} request {i}") for i, r in enumerate(reqs)])


@dataclass
class Report:
    violations: list = field(default_factory=list)  # list[(check, message)]
    warnings: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, check: str, msg: str) -> None:
        self.violations.append((check, msg))

    def to_json(self) -> dict:
        return {"ok": self.ok, "violations": [{"check": c, "message": m} for c, m in self.violations],
                "warnings": self.warnings, "stats": self.stats}

    def summary(self) -> str:
        s = " ".join(f"{k}={v}" for k, v in self.stats.items())
        return ("logs consistent " if self.ok else f"LOG VIOLATIONS={len(self.violations)} ") + s


MAX_REPORTED = 20  # violations listed per check before summarising


def _limited_add(report: Report, counts: dict, check: str, msg: str) -> None:
    counts[check] = counts.get(check, 0) + 1
    if counts[check] <= MAX_REPORTED:
        report.add(check, msg)
    elif counts[check] == MAX_REPORTED + 1:
        report.add(check, f"... further '{check}' violations not listed")


def check_logs(logs: "dict[str, Sequence[Epoch]]", history: Optional[Sequence[Op]] = None, *,
               strict_origin: bool = False) -> Report:
    """Runs checks (a)-(d) on the honest nodes' logs (name -> epochs) and the
    client history (or None). Returns a Report; report.ok is True when clean."""
    rep = Report()
    counts: dict = {}
    add = lambda c, m: _limited_add(rep, counts, c, m)  # noqa: E731
    names = list(logs)

    # Each log: strictly contiguous epochs.
    by_node: dict = {}
    for name in names:
        m = {}
        prev = None
        for ep in logs[name]:
            if prev is not None and ep.epoch != prev + 1:
                add("prefix", f"{name}: epoch {ep.epoch} follows epoch {prev} (logs must be contiguous)")
            if ep.epoch in m:
                add("prefix", f"{name}: epoch {ep.epoch} appears twice")
            m[ep.epoch] = ep
            prev = ep.epoch
        by_node[name] = m

    # (a) prefix and (d) digests: pairwise on the common epochs.
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ea, eb = by_node[a], by_node[b]
            for e in sorted(set(ea) & set(eb)):
                x, y = ea[e], eb[e]
                if x.output_digest != y.output_digest:
                    add("prefix", f"{a} and {b} diverge at epoch {e}: output_digest "
                        f"{x.output_digest[:16]}.. != {y.output_digest[:16]}..")
                    break
                if not x.same_content(y):
                    add("prefix", f"{a} and {b} diverge at epoch {e}: equal output_digest but "
                        f"different requests ({_first_request_diff(x, y)})")
                    break
                if x.state_digest != y.state_digest:
                    add("digest", f"{a} and {b}: state_digest differs at epoch {e}: "
                        f"{x.state_digest[:16]}.. != {y.state_digest[:16]}..")
                    break

    # The reference log: the union of all logs (they agree where they overlap
    # if (a) passed; otherwise the first node's copy wins).
    ref: dict = {}
    for name in names:
        for e, ep in by_node[name].items():
            ref.setdefault(e, ep)
    epochs = sorted(ref)
    rep.stats["nodes"] = len(names)
    rep.stats["epochs"] = epochs[-1] if epochs else 0
    rep.stats["node_heights"] = ",".join(
        f"{n}:{max(by_node[n]) if by_node[n] else 0}" for n in names)

    # (c) replay of the reference log through the KV + dedup model.
    committed_at: dict = {}  # (client, nonce) -> list[(epoch, position, request)]
    replayable = bool(epochs) and epochs[0] == 1 and epochs[-1] == len(epochs)
    if epochs and not replayable:
        missing = [e for e in range(1, epochs[-1] + 1) if e not in ref][:5]
        rep.warnings.append(f"replay skipped: the logs do not cover epochs 1..{epochs[-1]} "
                            f"(missing e.g. {missing}); outputs are checked as recorded")
    kv: dict = {}
    dedup: dict = {}  # client -> [high, set(committed nonces in window)]
    outputs_of: dict = {}  # (client, nonce) -> outputs of its commit
    n_requests = 0
    for e in epochs:
        for pos, r in enumerate(ref[e].requests):
            n_requests += 1
            cid, nonce, status = r["client"], r["nonce"], r["status"]
            where = f"epoch {e} position {pos} (client {cid[:12]}.. nonce {nonce})"
            if status == "committed":
                committed_at.setdefault((cid, nonce), []).append((e, pos, r))
                if len(r["outputs"]) != len(r["ops"]):
                    add("replay", f"{where}: {len(r['ops'])} ops but {len(r['outputs'])} outputs")
            if not replayable:
                continue
            if status in ("malformed", "forbidden"):
                if r["outputs"]:
                    add("replay", f"{where}: {status} request has outputs")
                continue
            d = dedup.get(cid)
            dup = d is not None and (nonce in d[1] or nonce == d[0]
                                     or (d[0] >= DEDUP_WINDOW and nonce <= d[0] - DEDUP_WINDOW))
            if status == "duplicate":
                if not dup:
                    add("replay", f"{where}: marked duplicate but the nonce never committed "
                        "(the request was dropped)")
                elif r["outputs"] and (cid, nonce) in outputs_of and r["outputs"] != outputs_of[(cid, nonce)]:
                    add("replay", f"{where}: duplicate answered with outputs that differ from its commit")
                continue
            if dup:
                first = outputs_of.get((cid, nonce))
                add("once", f"{where}: committed again although the nonce already committed"
                    + ("" if first is None else " earlier"))
            # Apply the ops in order.
            expect = []
            for op in r["ops"]:
                k = op["key"]
                cur = kv.get(k)
                if op["op"] == "put":
                    expect.append({"ok": True, "value": cur})
                    kv[k] = op["value"]
                elif op["op"] == "del":
                    expect.append({"ok": True, "value": cur})
                    kv.pop(k, None)
                elif op["op"] == "cas":
                    sw = cur == op["expected"]
                    expect.append({"ok": sw, "value": cur})
                    if sw:
                        kv[k] = op["value"]
                else:
                    expect.append({"ok": True, "value": cur})
            if expect != r["outputs"]:
                j = next((j for j, (x, y) in enumerate(zip(expect, r["outputs"])) if x != y),
                         min(len(expect), len(r["outputs"])))
                got = r["outputs"][j] if j < len(r["outputs"]) else None
                want = expect[j] if j < len(expect) else None
                add("replay", f"{where} op {j}: log output {_fmt_out(got)} but replay gives {_fmt_out(want)}")
            # Mark the nonce.
            if d is None:
                d = dedup[cid] = [nonce, set()]
            if nonce > d[0]:
                d[1].add(d[0])
                d[0] = nonce
                low = nonce - DEDUP_WINDOW
                if len(d[1]) > 2 * DEDUP_WINDOW:
                    d[1] = {x for x in d[1] if x > low}
            else:
                d[1].add(nonce)
            outputs_of[(cid, nonce)] = r["outputs"]
    rep.stats["requests"] = n_requests
    rep.stats["replayed"] = "yes" if replayable else "no"

    # Every (client, nonce) commits at most once.
    for (cid, nonce), where in committed_at.items():
        if len(where) > 1:
            at = ", ".join(f"epoch {e} position {p}" for e, p, _ in where)
            add("once", f"client {cid[:12]}.. nonce {nonce} committed {len(where)} times: {at}")

    # (b) and (c) against the history.
    if history is not None:
        _check_history(rep, add, history, committed_at, strict_origin)
    rep.stats["violations"] = len(rep.violations)
    return rep


def _check_history(rep: Report, add, history: Sequence[Op], committed_at: dict, strict_origin: bool) -> None:
    acked = [o for o in history if o.result == "ok"]
    no_nonce = sum(1 for o in acked if o.nonce is None)
    rep.stats["acked"] = len(acked)
    if no_nonce:
        rep.warnings.append(f"{no_nonce} acknowledged ops have no nonce and cannot be matched to the log")
    lost = dup = 0
    for o in history:
        if o.nonce is None:
            continue
        key = (o.client_id, o.nonce)
        found = committed_at.get(key, [])
        idx = o.op_index or 0
        if o.result == "fail":
            if found:
                e, p, _ = found[0]
                add("once", f"op {o.describe()} failed (definitely not applied) but committed at "
                    f"epoch {e} position {p}")
            continue
        if o.result != "ok":
            if len(found) <= 1 and found:
                _match_op(add, o, found[0], idx, check_output=False)
            continue
        if not found:
            lost += 1
            add("lost", f"acknowledged op lost: {o.describe()} (client {o.client_id[:12]}.. "
                f"nonce {o.nonce}) is in no committed request")
            continue
        if len(found) > 1:
            dup += 1
            add("once", f"acknowledged op {o.describe()} committed {len(found)} times")
        _match_op(add, o, found[0], idx, check_output=True)
    rep.stats["lost"] = lost
    rep.stats["duplicated"] = dup

    if strict_origin:
        known_clients = {o.client_id for o in history}
        submitted = {(o.client_id, o.nonce) for o in history if o.nonce is not None}
        for (cid, nonce), found in committed_at.items():
            if cid in known_clients and (cid, nonce) not in submitted:
                e, p, _ = found[0]
                add("origin", f"epoch {e} position {p}: client {cid[:12]}.. nonce {nonce} committed "
                    "but never submitted")


def _match_op(add, o: Op, found: tuple, idx: int, check_output: bool) -> None:
    e, p, r = found
    where = f"epoch {e} position {p}"
    if idx >= len(r["ops"]):
        add("once", f"{o.describe()}: op_index {idx} but the committed request at {where} "
            f"has {len(r['ops'])} ops")
        return
    lop = r["ops"][idx]
    want = {"op": o.op, "key": _hex(o.key), "value": _hex(o.value), "expected": _hex(o.expected)}
    if lop != want:
        add("once", f"{o.describe()}: the committed request at {where} holds a different op "
            f"{lop['op']}({_unhex(lop['key'])}, value={_unhex(lop['value'])}, "
            f"expected={_unhex(lop['expected'])})")
        return
    if not check_output or idx >= len(r["outputs"]):
        return
    lo = r["outputs"][idx]
    out = o.output
    bad = []
    if o.op == "get":
        if "value" in out and _hex(out["value"]) != lo["value"]:
            bad.append(f"read {_unhex(_hex(out['value']))} but the log says {_unhex(lo['value'])}")
    else:
        if "previous" in out and _hex(out["previous"]) != lo["value"]:
            bad.append(f"previous {_unhex(_hex(out['previous']))} but the log says {_unhex(lo['value'])}")
        if o.op == "cas" and "swapped" in out and out["swapped"] != lo["ok"]:
            bad.append(f"swapped={out['swapped']} but the log says {lo['ok']}")
    if bad:
        add("output", f"{o.describe()} at {where}: " + "; ".join(bad))


def _fmt_out(o: Optional[dict]) -> str:
    if o is None:
        return "(none)"
    return f"{{ok={o['ok']}, value={_unhex(o['value'])}}}"


def _first_request_diff(x: Epoch, y: Epoch) -> str:
    for i, (a, b) in enumerate(zip(x.requests, y.requests)):
        if a != b:
            return f"position {i}"
    return f"{len(x.requests)} vs {len(y.requests)} requests"


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description="Check honest nodes' committed logs (docs/checkers.md).")
    ap.add_argument("--log", action="append", required=True, metavar="[NAME=]PATH",
                    help="a node's committed-log dump (repeat per honest node)")
    ap.add_argument("--history", help="the client history (JSON lines)")
    ap.add_argument("--json", action="store_true", help="print a JSON report")
    ap.add_argument("--strict-origin", action="store_true",
                    help="a committed request of a client known to the history must be in the history")
    args = ap.parse_args(argv)
    logs = {}
    try:
        for spec in args.log:
            name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
            name = name or os.path.splitext(os.path.basename(path))[0]
            if name in logs:
                name = path
            logs[name] = load_log(path)
        history = read_history(args.history) if args.history else None
    except (OSError, LogError, HistoryError) as e:
        print(f"logcheck: {e}", file=sys.stderr)
        return 2
    rep = check_logs(logs, history, strict_origin=args.strict_origin)
    if args.json:
        print(json.dumps(rep.to_json(), indent=1))
    else:
        for w in rep.warnings:
            print(f"warning: {w}")
        for c, m in rep.violations:
            print(f"VIOLATION [{c}] {m}")
        print(rep.summary())
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
