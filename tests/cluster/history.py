#!/usr/bin/env python3
"""Client operation histories for the cluster checkers (docs/checkers.md).

A history is a JSON-lines file, one operation per line:

  {"id": 7, "client": "c1", "op": "cas", "key": "k3", "value": "v-c1-12",
   "expected": "v-c0-9", "invoke_s": 12.031, "complete_s": 12.094,
   "result": "ok", "output": {"swapped": true, "previous": "v-c0-9"},
   "nonce": 12, "op_index": 0, "client_key": "ab12..."}

* ``op``: put | get | del | cas.  ``value`` is the new value for put/cas (null
  otherwise); ``expected`` is the CAS comparand (null = "key absent"; null for
  the other ops).
* ``invoke_s`` / ``complete_s``: seconds on one monotonic clock shared by every
  client of the run; ``complete_s`` is null when the result is "timeout".
* ``result``: "ok" (the output is known), "fail" (definitely NOT applied, e.g.
  refused before submission) or "timeout" (unknown: maybe applied, at any
  point after invocation; its output is unknown).
* ``output`` (for "ok"): put/del -> {"previous": str|null}; get -> {"value":
  str|null}; cas -> {"swapped": bool, "previous": str|null}.  A field that is
  absent was not observed and the checkers accept any value for it.
* Optional, for the log checker: ``nonce`` (the request nonce), ``op_index``
  (index of the op inside its request, default 0), ``client_key`` (the client's
  public key as lowercase hex; when absent ``client`` is compared with the log's
  client field).

Only the standard library is used.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator, Optional

OPS = ("put", "get", "del", "cas")
RESULTS = ("ok", "fail", "timeout")
OUTPUT_FIELDS = {
    "put": ("previous",),
    "del": ("previous",),
    "get": ("value",),
    "cas": ("swapped", "previous"),
}


class HistoryError(ValueError):
    """A history line that does not follow the format."""


@dataclass
class Op:
    """One client operation of a history (one JSON line)."""

    id: int
    client: str
    op: str
    key: str
    value: Optional[str] = None
    expected: Optional[str] = None
    invoke_s: float = 0.0
    complete_s: Optional[float] = None
    result: str = "ok"
    output: dict = field(default_factory=dict)
    nonce: Optional[int] = None
    op_index: Optional[int] = None
    client_key: Optional[str] = None

    # ---- derived -------------------------------------------------------
    @property
    def complete_or_inf(self) -> float:
        """Completion time, +inf for an op whose outcome is unknown."""
        if self.result == "timeout" or self.complete_s is None:
            return math.inf
        return self.complete_s

    @property
    def writes(self) -> bool:
        return self.op in ("put", "del", "cas")

    @property
    def client_id(self) -> str:
        """The identity matched against a log's client field (lowercase)."""
        return (self.client_key or self.client).lower()

    # ---- JSON ----------------------------------------------------------
    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "id": self.id,
            "client": self.client,
            "op": self.op,
            "key": self.key,
            "value": self.value,
            "expected": self.expected,
            "invoke_s": self.invoke_s,
            "complete_s": self.complete_s,
            "result": self.result,
            "output": self.output,
        }
        if self.nonce is not None:
            d["nonce"] = self.nonce
        if self.op_index is not None:
            d["op_index"] = self.op_index
        if self.client_key is not None:
            d["client_key"] = self.client_key
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Op":
        try:
            op = cls(
                id=int(d["id"]),
                client=str(d["client"]),
                op=d["op"],
                key=d["key"],
                value=d.get("value"),
                expected=d.get("expected"),
                invoke_s=float(d["invoke_s"]),
                complete_s=None if d.get("complete_s") is None else float(d["complete_s"]),
                result=d["result"],
                output=d.get("output") or {},
                nonce=None if d.get("nonce") is None else int(d["nonce"]),
                op_index=None if d.get("op_index") is None else int(d["op_index"]),
                client_key=d.get("client_key"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise HistoryError(f"bad history record {d!r}: {e}") from None
        op.validate()
        return op

    def validate(self) -> None:
        where = f"op id={self.id}"
        if self.op not in OPS:
            raise HistoryError(f"{where}: unknown op {self.op!r}")
        if self.result not in RESULTS:
            raise HistoryError(f"{where}: unknown result {self.result!r}")
        if not isinstance(self.key, str):
            raise HistoryError(f"{where}: key must be a string")
        for name in ("value", "expected"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise HistoryError(f"{where}: {name} must be a string or null")
        if self.op in ("put", "cas") and self.value is None:
            raise HistoryError(f"{where}: {self.op} needs a value")
        if self.op in ("get", "del") and self.value is not None:
            raise HistoryError(f"{where}: {self.op} takes no value")
        if self.op != "cas" and self.expected is not None:
            raise HistoryError(f"{where}: only cas takes expected")
        if not isinstance(self.output, dict):
            raise HistoryError(f"{where}: output must be an object")
        if self.result == "ok":
            if self.complete_s is None:
                raise HistoryError(f"{where}: result ok needs complete_s")
            if self.complete_s < self.invoke_s:
                raise HistoryError(f"{where}: completes before it is invoked")
            for k, v in self.output.items():
                if k not in OUTPUT_FIELDS[self.op]:
                    raise HistoryError(f"{where}: unexpected output field {k!r} for {self.op}")
                if k == "swapped":
                    if not isinstance(v, bool):
                        raise HistoryError(f"{where}: swapped must be a bool")
                elif v is not None and not isinstance(v, str):
                    raise HistoryError(f"{where}: output {k} must be a string or null")

    def describe(self) -> str:
        """A one-line human form, e.g. `#7 c1 cas(k3, exp=v1 -> v2) = swapped prev=v1 [12.031, 12.094]`."""

        def s(v: Optional[str]) -> str:
            return "nil" if v is None else v

        if self.op == "put":
            call = f"put({self.key}, {s(self.value)})"
        elif self.op == "cas":
            call = f"cas({self.key}, exp={s(self.expected)} -> {s(self.value)})"
        else:
            call = f"{self.op}({self.key})"
        if self.result == "ok":
            o = self.output
            if self.op == "get":
                res = f"= {s(o['value'])}" if "value" in o else "= ?"
            elif self.op == "cas":
                sw = o.get("swapped")
                res = "= " + ("?" if sw is None else "swapped" if sw else "not-swapped")
                res += f" prev={s(o['previous'])}" if "previous" in o else ""
            else:
                res = f"= prev={s(o['previous'])}" if "previous" in o else "= ?"
        else:
            res = f"[{self.result}]"
        end = "inf" if self.complete_s is None or self.result == "timeout" else f"{self.complete_s:.6f}"
        return f"#{self.id} {self.client} {call} {res} [{self.invoke_s:.6f}, {end}]"


def read_history(path_or_file: "str | IO[str]") -> list[Op]:
    """Reads and validates a JSON-lines history (blank lines are ignored)."""
    if isinstance(path_or_file, str):
        with open(path_or_file, encoding="utf-8") as f:
            return list(_parse_lines(f, path_or_file))
    return list(_parse_lines(path_or_file, getattr(path_or_file, "name", "<stream>")))


def _parse_lines(lines: Iterable[str], name: str) -> Iterator[Op]:
    seen: set[int] = set()
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise HistoryError(f"{name}:{lineno}: not JSON: {e}") from None
        try:
            op = Op.from_json(d)
        except HistoryError as e:
            raise HistoryError(f"{name}:{lineno}: {e}") from None
        if op.id in seen:
            raise HistoryError(f"{name}:{lineno}: duplicate op id {op.id}")
        seen.add(op.id)
        yield op


def write_history(path: str, ops: Iterable[Op]) -> None:
    """Writes ops as a JSON-lines history."""
    with open(path, "w", encoding="utf-8") as f:
        for op in ops:
            f.write(json.dumps(op.to_json(), separators=(",", ":")) + "\n")


class HistoryWriter:
    """Records a history while clients run (thread safe).

        w = HistoryWriter("h.jsonl")
        i = w.invoke("c1", "put", "k1", value="v1", nonce=5)
        ...                                  # send the request
        w.complete(i, "ok", {"previous": None})
        w.close()                            # ops still pending become "timeout"

    A record is written (and flushed) when its op completes; `close()` writes
    the ops still pending as "timeout".  Times come from `clock` (default
    time.monotonic), which must be the same for every client of the run.
    """

    def __init__(self, path_or_file: "str | IO[str]", clock=time.monotonic):
        if isinstance(path_or_file, str):
            self._f: IO[str] = open(path_or_file, "w", encoding="utf-8")
            self._own = True
        else:
            self._f = path_or_file
            self._own = False
        self._clock = clock
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, Op] = {}
        self.counts = {"ok": 0, "fail": 0, "timeout": 0}

    def invoke(
        self,
        client: str,
        op: str,
        key: str,
        value: Optional[str] = None,
        expected: Optional[str] = None,
        *,
        nonce: Optional[int] = None,
        op_index: Optional[int] = None,
        client_key: Optional[str] = None,
        invoke_s: Optional[float] = None,
    ) -> int:
        """Records the invocation of an op; returns its id."""
        t = self._clock() if invoke_s is None else invoke_s
        with self._lock:
            oid = self._next_id
            self._next_id += 1
            rec = Op(
                id=oid, client=client, op=op, key=key, value=value, expected=expected,
                invoke_s=t, complete_s=None, result="timeout", output={},
                nonce=nonce, op_index=op_index, client_key=client_key,
            )
            rec.validate()
            self._pending[oid] = rec
        return oid

    def complete(self, op_id: int, result: str, output: Optional[dict] = None,
                 *, complete_s: Optional[float] = None) -> Op:
        """Records the outcome of op `op_id`: "ok" with its output, "fail"
        (definitely not applied) or "timeout" (unknown)."""
        t = self._clock() if complete_s is None else complete_s
        with self._lock:
            rec = self._pending.pop(op_id)
            rec.result = result
            rec.output = dict(output or {}) if result == "ok" else {}
            rec.complete_s = None if result == "timeout" else t
            rec.validate()
            self._emit(rec)
        return rec

    def record(self, op: Op) -> None:
        """Writes a complete record directly (its id must be unused)."""
        op.validate()
        with self._lock:
            self._next_id = max(self._next_id, op.id + 1)
            self._emit(op)

    def _emit(self, rec: Op) -> None:
        self.counts[rec.result] += 1
        self._f.write(json.dumps(rec.to_json(), separators=(",", ":")) + "\n")
        self._f.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        with self._lock:
            for oid in sorted(self._pending):
                rec = self._pending[oid]
                rec.result, rec.complete_s, rec.output = "timeout", None, {}
                self._emit(rec)
            self._pending.clear()
            if self._own:
                self._f.close()
            else:
                self._f.flush()

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":  # `history.py FILE`: validate and summarise
    import sys

    if len(sys.argv) != 2:
        print("usage: history.py HISTORY.jsonl", file=sys.stderr)
        sys.exit(2)
    try:
        ops = read_history(sys.argv[1])
    except (OSError, HistoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    by = {r: sum(1 for o in ops if o.result == r) for r in RESULTS}
    print(f"ops={len(ops)} keys={len({o.key for o in ops})} "
          f"ok={by['ok']} fail={by['fail']} timeout={by['timeout']}")
