#!/usr/bin/env python3
"""Black-box linearizability checker for tobd's key-value histories.

Written from the definitions (docs/checkers.md):

* Wing & Gong: a history is linearizable iff its completed operations (plus
  some of the pending ones) can be totally ordered so that the order respects
  real time (A precedes B if A.complete < B.invoke) and replaying it through
  the sequential model reproduces every observed output.
* Lowe's "just-in-time" search with memoisation: a DFS that only ever
  linearizes a *minimal* pending op (one whose call comes before every
  unlinearized return), over a doubly linked list of call/return events, with a
  cache of (set of linearized ops as a bitset, model state) already explored.
* P-compositionality (Horn & Kroening): a register per key is independent of
  the others, so each key is checked on its own.

Model (one register per key, state = value or None for "absent"):
  put(v)        -> previous; state := v
  del           -> previous; state := None
  cas(e, v)     -> swapped = (state == e) (e None = "absent"), previous;
                   state := v iff swapped
  get           -> value

Ops with result "fail" were definitely not applied and are ignored. Ops with
result "timeout" may take effect at any point after their invocation or not
at all, and any output is accepted for them; an output field absent from an
"ok" op is likewise accepted whatever it is. The answer is exact without any
assumption on values; values written by a single op (the harness makes all
writes unique) enable sound reductions that keep the search nearly linear:
forced frames, stranded-observer pruning, timed-out writes dropped or made
required, and linear-time rejections of stale and future reads (see
_quick_reject, _prepare and _search, and docs/checkers.md).

The search is bounded (`budget` steps per key); a key whose search exceeds it
is reported "unknown", which counts as a failure unless explicitly allowed.

CLI:  lincheck.py HISTORY.jsonl [--json] [--budget N] [--allow-unknown] [--no-minimize]
      exit 0: prints `linearizable keys=K ops=N`
      exit 1: not linearizable (first key and a counterexample window) or unknown
      exit 2: unreadable history / usage
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from history import HistoryError, Op, read_history  # noqa: E402

DEFAULT_BUDGET = 5_000_000  # search steps per key (a few seconds at most)

_UNK = object()  # an output field that was not observed
_PUT, _DEL, _CAS, _GET = 0, 1, 2, 3
_KIND = {"put": _PUT, "del": _DEL, "cas": _CAS, "get": _GET}


class _Entry:
    """One op as the search sees it.

    blind:    its output is unknown (timed out, or relaxed): any output fits.
    optional: it may be left out of the linearization (blind ops; and ops in
              flight at the start of a window, which may have taken effect
              before it: their output still has to fit if they are placed).
    complete: its deadline in the event list (+inf for optional ops).
    """

    __slots__ = ("op", "kind", "value", "expected", "prev", "val", "swapped",
                 "blind", "optional", "invoke", "complete")

    def __init__(self, op: Op, relaxed: bool = False, optional: bool = False):
        self.op = op
        self.kind = _KIND[op.op]
        self.value = op.value
        self.expected = op.expected
        self.blind = relaxed or op.result == "timeout"
        self.optional = self.blind or optional
        out = {} if self.blind else op.output
        self.prev = out["previous"] if "previous" in out else _UNK
        self.val = out["value"] if "value" in out else _UNK
        self.swapped = out["swapped"] if "swapped" in out else _UNK
        self.invoke = op.invoke_s
        self.complete = math.inf if self.optional else op.complete_or_inf

    @property
    def partial(self) -> bool:
        """A known-outcome op with an output field missing."""
        if self.blind:
            return False
        if self.kind == _GET:
            return self.val is _UNK
        return self.prev is _UNK or (self.kind == _CAS and self.swapped is _UNK)

    @property
    def fixed_effect(self) -> bool:
        """Its effect on the state is the same wherever it is placed (given
        that its output fits there): a get, a CAS known not to swap, or an
        op whose previous value is known."""
        if self.blind:
            return False
        return self.kind == _GET or self.prev is not _UNK or (
            self.kind == _CAS and self.swapped is False)

    @property
    def may_write(self) -> bool:
        """A put, or a CAS not known to fail (a CAS known not to swap never
        writes its value, wherever it is placed)."""
        return self.kind == _PUT or (self.kind == _CAS and (self.blind or self.swapped is not False))

    def written(self):
        return None if self.kind == _DEL else self.value

    def must(self, deadline: float) -> "_Entry":
        e = object.__new__(_Entry)
        for f in _Entry.__slots__:
            setattr(e, f, getattr(self, f))
        e.optional = False
        e.complete = deadline
        return e


def _prepare(entries: Sequence[_Entry], init_states: frozenset) -> list:
    """Sound reductions of the maybe-applied (blind, optional) writes:

    * dropped: a blind write whose written value no known output ever shows
      and no blind CAS expects, when every known output is complete. In any
      linearization that applies it, the ops up to the next state change all
      have unknown outputs (a known one would show the value), so removing it,
      and the blind CASes of that stretch, leaves a linearization.
    * required: a blind put/CAS whose value is written by no other op and is
      not a possible initial state, but is shown by the known output of some
      required op: it was applied, before each such op, so it becomes a
      required op whose deadline is the earliest completion of those ops.

    Blind gets change nothing and are dropped."""
    known = [e for e in entries if not e.blind]
    shown = set()  # values shown by any known output
    observed: dict = {}  # value -> earliest completion of a required op showing it
    for e in known:
        v = e.val if e.kind == _GET else e.prev
        if v is not _UNK:
            shown.add(v)
            if not e.optional:
                observed[v] = min(observed.get(v, math.inf), e.complete)
    partial = any(e.partial for e in known)
    expected = {e.expected for e in entries if e.kind == _CAS and e.blind}
    writers: dict = {}
    for e in entries:
        if e.may_write:
            writers[e.value] = writers.get(e.value, 0) + 1
    out = []
    for e in entries:
        if e.blind:
            if e.kind == _GET:
                continue
            w = e.written()
            if not partial and w not in shown and w not in expected:
                continue
            if (e.kind != _DEL and w in observed and writers.get(w) == 1
                    and w not in init_states):
                e = e.must(observed[w])
        out.append(e)
    return out


def _step(state, e: _Entry):
    """Applies entry e to `state`; returns the new state or _UNK if the observed
    output is impossible. A state is a value (str or None) or, when several
    values are possible (unknown initial state), a frozenset of them."""
    if type(state) is frozenset:
        return _step_set(state, e)
    k = e.kind
    if k == _GET:
        if e.val is not _UNK and e.val != state:
            return _UNK
        return state
    if e.prev is not _UNK and e.prev != state:
        return _UNK
    if k == _PUT:
        return e.value
    if k == _DEL:
        return None
    swapped = state == e.expected
    if e.swapped is not _UNK and e.swapped != swapped:
        return _UNK
    return e.value if swapped else state


def _norm(s: frozenset):
    if len(s) == 1:
        return next(iter(s))
    return s


def _step_set(states: frozenset, e: _Entry):
    k = e.kind
    if k == _GET:
        if e.val is _UNK:
            return states
        return e.val if e.val in states else _UNK
    if e.prev is not _UNK:
        if e.prev not in states:
            return _UNK
        return _step(e.prev, e)
    if k == _PUT:
        return e.value
    if k == _DEL:
        return None
    # cas with unknown previous
    nxt = set()
    if e.swapped is not False and e.expected in states:
        nxt.add(e.value)
    if e.swapped is not True:
        nxt.update(s for s in states if s != e.expected)
    if not nxt:
        return _UNK
    return _norm(frozenset(nxt))


@dataclass
class _SearchOutcome:
    status: str  # "ok" | "fail" | "unknown"
    steps: int
    deepest: int = 0  # most required ops linearized at once
    reject: Optional["_Reject"] = None  # set when a linear-time check failed


def _search(entries: Sequence[_Entry], init_state, budget: int) -> _SearchOutcome:
    """Lowe's JIT linearization search with memoisation (see module doc)."""
    n = len(entries)
    required = sum(1 for e in entries if not e.optional)
    if required == 0:
        return _SearchOutcome("ok", 0)
    # Events: calls sort before returns at equal times (A precedes B only if
    # A.complete < B.invoke, strictly).
    events = []
    for i, e in enumerate(entries):
        events.append((e.invoke, 0, i))
        events.append((e.complete, 1, i))
    events.sort()
    head, tail = 0, 2 * n + 1
    nxt = [0] * (2 * n + 2)
    prv = [0] * (2 * n + 2)
    node_op = [0] * (2 * n + 2)
    node_call = [False] * (2 * n + 2)
    ret_node = [0] * n
    prev_node = head
    for pos, (_, kind, i) in enumerate(events, 1):
        node_op[pos] = i
        node_call[pos] = kind == 0
        if kind == 1:
            ret_node[i] = pos
        nxt[prev_node] = pos
        prv[pos] = prev_node
        prev_node = pos
    nxt[prev_node] = tail
    prv[tail] = prev_node

    node_unknown = [False] * (2 * n + 2)  # blind ops: tried in the second pass
    for pos in range(1, 2 * n + 1):
        node_unknown[pos] = entries[node_op[pos]].blind

    # Observers of "unique" values: a value written by exactly one op and not
    # a possible initial state holds only once, right after its writer; once
    # the state moves away from it, it never comes back. So leaving such a
    # state while a required known-outcome op that shows it is unlinearized is
    # a dead end (pruned without search).
    writers: dict = {}
    for e in entries:
        if e.may_write:
            writers[e.value] = writers.get(e.value, 0) + 1
    init_set = init_state if type(init_state) is frozenset else frozenset([init_state])
    fixed = [e.fixed_effect for e in entries]
    # With a required op whose output is partly unknown (say a CAS known not
    # to swap, previous unknown), that op can sit before X at v without being
    # counted as an observer of v: the second forcing rule is then off.
    any_partial = any(e.partial for e in entries if not e.optional)
    obs_of = []
    pending: dict = {}
    for e in entries:
        v = _UNK if e.optional else (e.val if e.kind == _GET else e.prev)
        if v is not _UNK and (v is None or writers.get(v, 0) != 1 or v in init_set):
            v = _UNK
        obs_of.append(v)
        if v is not _UNK:
            pending[v] = pending.get(v, 0) + 1

    # The candidates of a frame are the calls before the first unlinearized
    # return. They are tried in two passes: ops with a known outcome first
    # (phase 0), then the maybe-applied ones (phase 1), so that a pending op
    # is placed only where something needs it.
    cache: set = set()
    stack: list = []  # (call node, state before, phase, forced)
    state = init_state
    lin = 0
    steps = 0
    deepest = 0
    phase = 0
    node = nxt[head]
    while True:
        steps += 1
        if steps > budget:
            return _SearchOutcome("unknown", steps, deepest)
        if node != tail and node_call[node]:
            if node_unknown[node] != phase:
                node = nxt[node]
                continue
            i = node_op[node]
            e = entries[i]
            new_state = _step(state, e)
            if (new_state is not _UNK and new_state != state and type(state) is not frozenset
                    and pending.get(state, 0) - (obs_of[i] == state) > 0):
                new_state = _UNK  # would strand an observer of `state`
            if new_state is not _UNK:
                new_lin = lin | (1 << i)
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    # "Forced" frames: the op is placed now without trying
                    # alternatives, because any valid completion can be
                    # reordered to put it first, so if this child fails the
                    # whole frame fails. That holds for a required op with a
                    # known output (minimal, output consistent here)
                    #  - that leaves the state unchanged, and would wherever
                    #    it is placed (fixed_effect): move it to the front;
                    #  - or that observes the current state v where v is a
                    #    unique value and it is v's last pending observer: in
                    #    any completion the state stays v until this op, so
                    #    only ops that can be left out (optional ones) can
                    #    come before it: each required one would show v.
                    forced = (not e.optional and type(state) is not frozenset
                              and ((new_state == state and fixed[i])
                                   or (obs_of[i] == state and not any_partial)))
                    stack.append((node, state, phase, forced))
                    state, lin = new_state, new_lin
                    if obs_of[i] is not _UNK:
                        pending[obs_of[i]] -= 1
                    # lift the call and its return out of the list
                    r = ret_node[i]
                    nxt[prv[node]] = nxt[node]
                    prv[nxt[node]] = prv[node]
                    nxt[prv[r]] = nxt[r]
                    prv[nxt[r]] = prv[r]
                    if not e.optional:
                        required -= 1
                        if required == 0:
                            return _SearchOutcome("ok", steps, len(stack))
                        if len(stack) > deepest:
                            deepest = len(stack)
                    node = nxt[head]
                    phase = 0
                    continue
            node = nxt[node]
        elif phase == 0:
            # End of the candidates (a return, or the tail, which cannot be
            # reached while a known-outcome op is unlinearized): second pass.
            phase = 1
            node = nxt[head]
        else:
            # No candidate fits: backtrack.
            while True:
                if not stack:
                    return _SearchOutcome("fail", steps, deepest)
                node, state, phase, forced = stack.pop()
                i = node_op[node]
                lin &= ~(1 << i)
                if obs_of[i] is not _UNK:
                    pending[obs_of[i]] += 1
                if not entries[i].optional:
                    required += 1
                r = ret_node[i]
                prv[nxt[r]] = r
                nxt[prv[r]] = r
                prv[nxt[node]] = node
                nxt[prv[node]] = node
                if not forced:
                    break
            node = nxt[node]


@dataclass
class _Reject:
    entry: _Entry
    reason: str
    witnesses: list  # list[Op], the ops that prove it


def _v(v) -> str:
    return "nil" if v is None else repr(v)


def _quick_reject(entries: Sequence[_Entry], init_states: Iterable) -> Optional[_Reject]:
    """Necessary conditions checked in linear time; returns a violation (no
    linearization exists) or None:
     - a known output shows a value that no op writes and that is not a
       possible initial state (only required ops count here);
     - for a value v written by exactly one op W and not a possible initial
       state ("unique"), which holds only from W until the one op S that
       leaves it (a known put/del, or a swapping CAS, whose previous is v):
       at most one such S exists; an op that shows v does not precede W in
       real time (W.invoke > its completion), and S does not precede it."""
    init_set = set(init_states)
    writers: dict = {}
    for e in entries:
        if e.may_write:
            writers.setdefault(e.value, []).append(e)
    known = [e for e in entries if not e.optional]  # required, known output
    for e in known:
        for v in (e.val, e.prev):
            if v is not _UNK and v is not None and v not in writers and v not in init_set:
                return _Reject(e, f"it shows {_v(v)}, which no op (that may have been applied) writes",
                               [e.op])
    unique = {v: ws[0] for v, ws in writers.items() if len(ws) == 1 and v not in init_set}
    succ: dict = {}
    for e in known:
        v = e.prev
        if v is _UNK or v not in unique:
            continue
        if e.kind in (_PUT, _DEL) or (e.kind == _CAS and e.swapped is True and e.value != v):
            if v in succ:
                return _Reject(e, f"it and #{succ[v].op.id} both replace {_v(v)}, which only "
                               f"#{unique[v].op.id} writes", [unique[v].op, succ[v].op, e.op])
            succ[v] = e
    for e in known:
        v = e.val if e.kind == _GET else e.prev
        if v is _UNK or v not in unique:
            continue
        w = unique[v]
        if w is e:
            return _Reject(e, f"it shows {_v(v)} before writing it (no other op writes it)", [e.op])
        if w.invoke > e.complete:
            return _Reject(e, f"it shows {_v(v)}, whose only writer #{w.op.id} was invoked after "
                           "it completed", [e.op, w.op])
        s = succ.get(v)
        if s is not None and s is not e and s.complete < e.invoke:
            return _Reject(e, f"it shows {_v(v)} (written only by #{w.op.id}), which #{s.op.id} "
                           "had already replaced before it was invoked", [w.op, s.op, e.op])
    return None


def _check_entries(entries: Sequence[_Entry], init_states: frozenset, budget: int) -> _SearchOutcome:
    rej = _quick_reject(entries, init_states)
    if rej is not None:
        return _SearchOutcome("fail", 0, reject=rej)
    entries = _prepare(entries, init_states)
    init = _norm(init_states)
    return _search(entries, init, budget)


# Roles of ops in a counterexample window.
ROLE_IN = "in"            # invoked inside the window; its output must hold
ROLE_IN_FLIGHT = "in-flight"  # invoked before the window start, completed after it:
                          # it may have taken effect before the window
ROLE_PENDING = "pending"  # outcome unknown (timed out), invoked before the window
ROLE_IGNORED = "ignored"  # invoked after the culprit: maybe applied, output ignored


@dataclass
class KeyResult:
    key: str
    status: str  # "ok" | "fail" | "unknown"
    ops: int
    steps: int
    seconds: float
    window: list = field(default_factory=list)  # list[(Op, role)] for "fail"
    culprit: Optional[Op] = None
    initial_states: Optional[list] = None  # None = the empty register (window from the start)
    window_start: Optional[float] = None  # the cut time, None = the start of the history
    reason: Optional[str] = None  # a direct explanation, when a linear-time check found it
    witnesses: list = field(default_factory=list)  # list[Op] behind `reason`

    def to_json(self) -> dict:
        d = {"key": self.key, "status": self.status, "ops": self.ops,
             "steps": self.steps, "seconds": round(self.seconds, 3)}
        if self.status == "fail":
            d["culprit"] = self.culprit.to_json() if self.culprit else None
            if self.reason is not None:
                d["reason"] = self.reason
                d["witnesses"] = [op.to_json() for op in self.witnesses]
            d["window_start_s"] = self.window_start
            d["initial_states"] = self.initial_states
            d["window"] = [dict(op.to_json(), role=role) for op, role in self.window]
        return d

    def explain(self, max_lines: int = 60) -> str:
        lines = [f"key {self.key!r}: NOT linearizable ({self.ops} ops)"]
        if self.reason is not None:
            lines.append(f"  op #{self.witnesses[-1].id}: {self.reason}:")
            for op in self.witnesses:
                lines.append("    " + op.describe())
        if self.culprit is not None:
            lines.append(f"  culprit: {self.culprit.describe()}")
            lines.append("  (the ops invoked before it are linearizable when every later op counts as"
                         " maybe-applied with its output ignored; with its own output they are not)")
        if self.initial_states is None:
            lines.append("  window, from the start of the history (empty register):")
        else:
            shown = ", ".join("nil" if v is None else v for v in self.initial_states[:6])
            more = "" if len(self.initial_states) <= 6 else f", ... ({len(self.initial_states)} values)"
            lines.append(f"  window from t={self.window_start:.6f}; the value there may be any of: "
                         f"{shown}{more}")
        notes = {ROLE_IN: "", ROLE_IN_FLIGHT: "   (in flight at the window start: may have taken effect before it)",
                 ROLE_IGNORED: "   (invoked after the culprit: maybe applied, output ignored)"}
        shown = [(op, role) for op, role in self.window if role != ROLE_PENDING]
        if len(shown) > max_lines:
            cut = len(shown) - max_lines // 4 * 3
            lines.append(f"    ... {cut} ops of the window not shown (--json has them all)")
            shown = shown[cut:]
        for op, role in shown:
            lines.append("    " + op.describe() + notes[role])
        pending = [op for op, role in self.window if role == ROLE_PENDING]
        if len(pending) > max_lines // 4:
            lines.append(f"  ({len(pending)} ops with unknown outcome were invoked before the window;"
                         " --json lists them)")
        elif pending:
            lines.append("  and ops with unknown outcome invoked before the window"
                         " (each may take effect inside it, or not at all):")
            for op in pending:
                lines.append("    " + op.describe())
        return "\n".join(lines)


def check_key(key: str, ops: Sequence[Op], *, budget: int = DEFAULT_BUDGET,
              minimize: bool = True) -> KeyResult:
    """Checks the ops of one key (ops with result "fail" are ignored)."""
    t0 = time.monotonic()
    # "fail" ops were never applied; a get with unknown outcome changes nothing.
    live = sorted((o for o in ops if o.result == "ok" or (o.result == "timeout" and o.op != "get")),
                  key=lambda o: (o.invoke_s, o.id))
    entries = [_Entry(o) for o in live]
    out = _check_entries(entries, frozenset([None]), budget)
    res = KeyResult(key, out.status, len(live), out.steps, 0.0)
    if out.reject is not None:
        res.reason, res.witnesses = out.reject.reason, out.reject.witnesses
    if out.status == "fail" and minimize:
        _minimize(res, live, budget)
    res.seconds = time.monotonic() - t0
    return res


def _minimize(res: KeyResult, live: list, budget: int) -> None:
    """Finds a short window that is still not linearizable (docs/checkers.md).
    Every check here is sound: failing it implies that the full history fails.

    1. The smallest m such that ops[0:m] (invoke order), with every later op
       relaxed (maybe applied, output ignored), is not linearizable; ops[m-1]
       is the culprit. Relaxing only adds linearizations: monotone in m.
    2. The latest cut time tau (an invocation time among ops[0:m]) such that
       the window check still fails: ops that completed before tau are
       dropped; the state at tau is any value written by an op invoked before
       tau (or absent); ops in flight at tau may have taken effect before it
       (optional, output checked if placed); timed-out ops invoked before tau
       may take effect in the window or not. Given a linearization of the full
       history, its part after the last dropped op is one of the window, so
       this is sound; a later cut only relaxes more: monotone in tau.
    """
    n = len(live)
    sub_budget = max(budget // 4, 10_000)

    def fails(m: int) -> bool:
        es = [_Entry(o, relaxed=i >= m) for i, o in enumerate(live)]
        return _check_entries(es, frozenset([None]), sub_budget).status == "fail"

    lo, hi = 1, n  # fails(n) is known
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid + 1
    m = lo
    culprit = live[m - 1]
    res.culprit = culprit
    core = live[:m]
    horizon = max((o.complete_s for o in core if o.result == "ok"), default=culprit.invoke_s)
    # Later ops invoked after every core op completed cannot affect the core.
    tail = [o for o in live[m:] if o.invoke_s <= horizon and o.op != "get"]

    def window(c: int):
        tau = core[c].invoke_s
        init = {None}
        roles = []
        for o in core[:c]:
            if o.op in ("put", "cas"):
                init.add(o.value)
            if o.result == "timeout":
                roles.append((o, ROLE_PENDING))
            elif o.complete_s >= tau:
                roles.append((o, ROLE_IN_FLIGHT))
        roles += [(o, ROLE_IN) for o in core[c:]] + [(o, ROLE_IGNORED) for o in tail]
        return tau, init, roles

    def window_fails(roles, init) -> bool:
        es = [_Entry(o, relaxed=role == ROLE_IGNORED, optional=role == ROLE_IN_FLIGHT)
              for o, role in roles]
        return _check_entries(es, frozenset(init), sub_budget).status == "fail"

    best = None
    lo, hi = 1, m - 1
    while lo <= hi:  # the latest cut that still fails
        mid = (lo + hi) // 2
        tau, init, roles = window(mid)
        if window_fails(roles, init):
            best = (tau, init, roles)
            lo = mid + 1
        else:
            hi = mid - 1
    if best is None:
        res.window = [(o, ROLE_IN) for o in core] + \
            [(o, ROLE_IGNORED) for o in tail]
        res.initial_states = None
        res.window_start = None
    else:
        tau, init, roles = best
        res.window = roles
        res.window_start = tau
        res.initial_states = sorted(init, key=lambda v: (v is not None, v or ""))


@dataclass
class CheckResult:
    status: str  # "ok" | "fail" | "unknown"
    keys: int
    ops: int
    results: list  # list[KeyResult], in key order

    @property
    def failures(self) -> list:
        return [r for r in self.results if r.status == "fail"]

    @property
    def unknown(self) -> list:
        return [r for r in self.results if r.status == "unknown"]

    def ok(self, allow_unknown: bool = False) -> bool:
        return self.status == "ok" or (allow_unknown and self.status == "unknown")

    def to_json(self) -> dict:
        return {
            "linearizable": self.status == "ok",
            "status": self.status,
            "keys": self.keys,
            "ops": self.ops,
            "failures": [r.to_json() for r in self.failures],
            "unknown_keys": [r.key for r in self.unknown],
            "max_key_seconds": round(max((r.seconds for r in self.results), default=0.0), 3),
        }


def check_history(ops: Sequence[Op], *, budget: int = DEFAULT_BUDGET, minimize: bool = True,
                  stop_at_first: bool = False) -> CheckResult:
    """Checks every key of a history; status "fail" if any key fails, else
    "unknown" if any key's search ran out of budget, else "ok"."""
    by_key: dict[str, list[Op]] = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    results = []
    for key in sorted(by_key):
        r = check_key(key, by_key[key], budget=budget, minimize=minimize)
        results.append(r)
        if stop_at_first and r.status == "fail":
            break
    status = "ok"
    if any(r.status == "unknown" for r in results):
        status = "unknown"
    if any(r.status == "fail" for r in results):
        status = "fail"
    return CheckResult(status, len(by_key), len(ops), results)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description="Check a tobd KV history for linearizability.")
    ap.add_argument("history", help="JSON-lines history (docs/checkers.md)")
    ap.add_argument("--json", action="store_true", help="print a JSON report")
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                    help=f"search steps per key before giving up (default {DEFAULT_BUDGET})")
    ap.add_argument("--allow-unknown", action="store_true",
                    help="exit 0 when some keys are unknown (budget exceeded) and none fail")
    ap.add_argument("--no-minimize", action="store_true", help="skip counterexample shrinking")
    args = ap.parse_args(argv)
    try:
        ops = read_history(args.history)
    except (OSError, HistoryError) as e:
        print(f"lincheck: {e}", file=sys.stderr)
        return 2
    res = check_history(ops, budget=args.budget, minimize=not args.no_minimize,
                        stop_at_first=True)
    if args.json:
        print(json.dumps(res.to_json(), indent=1))
    elif res.status == "ok":
        print(f"linearizable keys={res.keys} ops={res.ops}")
    elif res.status == "fail":
        f = res.failures[0]
        print(f"NOT linearizable keys={res.keys} ops={res.ops} first_key={f.key}")
        print(f.explain())
    else:
        names = ", ".join(repr(r.key) for r in res.unknown[:10])
        print(f"unknown keys={res.keys} ops={res.ops}: search budget exceeded for "
              f"{len(res.unknown)} key(s): {names}")
    return 0 if res.ok(args.allow_unknown) else 1


if __name__ == "__main__":
    sys.exit(main())
