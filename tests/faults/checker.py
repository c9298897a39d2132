"""Per-key linearizability checker for histories recorded against the replicated key-value API.

Model
-----
Every key is an independent register (linearizability is compositional, so checking each
key alone is exactly as strong as checking the whole store, and far cheaper). An operation
is a ``read``, a ``write(value)`` or a ``cas(expected, new)``; each has a call time, a
return time and an outcome. An operation whose outcome is unknown (the client timed out, the
connection broke, a node answered 5xx) may have taken effect at any instant after its call,
possibly long after the client gave up, or never. Such operations get return time +inf,
which is how porcupine encodes "pending": an op with an infinite return may be placed
anywhere after its call, and placing it after everything else is indistinguishable from
"never happened". Reads whose outcome is unknown carry no information and are not recorded.

Search
------
Wing & Gong's backtracking search with Lowe's memoization, as in porcupine's ``checker.go``:
the call and return entries of all operations form a doubly linked list sorted by time
(returns of pending operations at +inf). The search repeatedly takes a call entry that
precedes the first remaining return entry (an op that may be linearized next), applies it to
the register model and, if the model accepts it and the pair (set of linearized ops, register
value) has not been seen before, lifts the op out of the list. Reaching a return entry means
the op it belongs to cannot be placed any more on this path, so the last choice is undone.
The set of linearized ops is a Python int used as a bitset. A return at time t and a call at
the same time t are ordered call first: the two ops count as concurrent, which can only hide
an anomaly, never invent one.

The search stops with success as soon as every op with a finite return time is linearized:
what remains are pending writes and pending cas, which can always be placed last.

Reductions done before the search (all exact: the reduced history is linearizable if and
only if the original is):

* An unknown-outcome write or cas whose new value is never observed is dropped. "Observed"
  means some read returned that value, some definite-True cas expected it, or some kept
  unknown-outcome cas expected it (that cas may have succeeded because of it, and its own new
  value may be observed). Why it is sound: if the rest of the history has a linearization,
  appending the dropped op at the end gives one for the whole history; conversely, take a
  linearization in which the op took effect and remove it. Only the ops between it and the
  next effective write see a different register value, and none of them can tell: no read
  or definite-True cas there can expect the unobserved value, and unknown cas there simply
  do not take effect. The one exception is a definite-False cas ("412: the value was not
  ``expected``"): removing a write can turn the register back into ``expected`` and make that
  answer impossible. So an unknown write is kept when a definite-False cas that is not
  strictly before it expects a value the register can ever hold, and an unknown cas
  ``expected -> new`` is kept when such a definite-False cas expects the same ``expected``
  (removing that cas puts ``expected`` back). The rule is applied until nothing changes.
* An unknown-outcome write or cas whose new value v is written by no other operation and is
  not the initial value, and which is observed, must have taken effect before the linearization
  point of every observer, hence before the earliest observer's return. Its return time is
  set to that instant. This leaves the set of valid linearizations unchanged but removes the
  +inf windows that make the search blow up.
* A definite-False cas whose refusal holds wherever it is placed is dropped: its expected
  value was never written (and is not the initial value), or every writer of that value was
  acknowledged and overwritten by an acknowledged write that finished before the cas began.
  Dropping these settled refusals frees unknown writes for the first rule.
* A read (or definite-True cas) of a value that no operation ever wrote and that is not the
  initial value can never linearize; the key is reported right away, naming those ops.

The search itself prunes further (state-keeping ops placed first and alone, pending ops tried
last and only where they matter, dominance between configurations); ``_search`` explains why
each rule loses no linearization. All of this is cross-checked against a plain exhaustive
search on thousands of small random histories in the unit tests.

Performance (``python -m tests.faults.checker`` runs ``_benchmark``; CPython 3.11, one
core): a key with 2,000 ops from 12 concurrent clients (about 10 ops in flight at any time;
45 % reads, 35 % writes, 20 % cas, 50 of the writes and cas with unknown outcome) decides in
0.06-0.2 s (about 10,000 steps) when linearizable, and in 0.1-0.8 s (up to about 45,000
steps) when one read in the middle is made stale, because everything before the violation
must be exhausted. The same holds for histories whose cas expect a value read earlier (realistic
412s, which keep some unknown writes in the search). A step is one configuration entered;
it costs roughly 10-25 microseconds, so the default budget of 2,000,000 steps gives up after
a minute or less. Histories whose unknown-outcome ops cannot be reduced (repeated values)
can need far more steps; ``max_steps`` bounds the work and the result is then
``linearizable=None`` (undecided), never a guess.

Limitations: client ids are only reported, never used (a client's ops do not overlap, so
real time already orders them). The reductions that make unknown-outcome ops cheap need
values that are unique per key; with repeated values the checker stays exact but may run out
of budget. The explanation of a violation names the op at which the deepest attempt got
stuck, which is where the anomaly shows, not necessarily where the service went wrong.

Separate, search-free detectors give explanations a person can verify by hand:
``stale_reads`` (a read returned a value already overwritten by an acknowledged write that
finished before the read began) and ``lost_writes`` (the value read after the faults healed
contradicts the last acknowledged write).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "KeyResult",
    "Op",
    "check_history",
    "check_key",
    "lost_writes",
    "stale_reads",
]

DEFAULT_MAX_STEPS: Final = 2_000_000


@dataclass(frozen=True)
class Op:
    """One operation on one key, as the client saw it.

    ``value``: write: the value written; read: the value returned (None for absent/404);
    cas: the new value. ``expected``: cas only. ``ok``: cas True/False when the answer was
    received, None when unknown; write True when acknowledged, None when unknown.

    An op's outcome is unknown when ``ret`` is None (or inf) or, for a write or cas, when
    ``ok`` is None: a request that failed with a timeout or 5xx may still be applied later,
    so its return time carries no information and the checker treats it as +inf. A write
    counts as acknowledged only with ``ok=True`` and a finite ``ret``.
    """

    client: int
    kind: Literal["read", "write", "cas"]
    call: float
    ret: float | None
    value: Any = None
    expected: Any = None
    ok: bool | None = None

    @property
    def unknown(self) -> bool:
        """Whether the op may or may not have taken effect (reads are always definite)."""
        if self.kind == "read":
            return False
        return self.ret is None or math.isinf(self.ret) or self.ok is None

    @property
    def acknowledged(self) -> bool:
        """Whether the op definitely changed the register (acknowledged write or cas True)."""
        return self.kind in ("write", "cas") and self.ok is True and not self.unknown

    @property
    def may_write(self) -> bool:
        """Whether the op may have set the register to ``value`` (unknown ones included)."""
        return self.kind != "read" and self.ok is not False


@dataclass
class KeyResult:
    """The verdict for one key.

    ``linearizable`` is None when the search budget ran out: undecided, not a pass.
    ``culprit`` is the op that could not be placed (None when linearizable or undecided).
    """

    key: str
    linearizable: bool | None
    ops: int
    explanation: str
    steps: int = 0
    culprit: Op | None = None
    dropped: int = 0


# Model codes, so that the search loop compares small ints only.
_READ: Final = 0
_WRITE: Final = 1  # definite or unknown: a write is always accepted
_CAS_TRUE: Final = 2
_CAS_FALSE: Final = 3
_CAS_MAYBE: Final = 4  # unknown outcome: applies when the register holds ``expected``


class _Interner:
    """Numbers values by equality, so that the search hashes small ints, whatever the values are.

    Unhashable values (dicts from JSON bodies) are compared one by one: they are rare and
    the tables are small.
    """

    def __init__(self) -> None:
        self._hashable: dict[Any, int] = {}
        self._unhashable: list[tuple[Any, int]] = []
        self.values: list[Any] = []

    def id(self, value: Any) -> int:
        """The number of ``value``, allocating one the first time it is seen."""
        try:
            found = self._hashable.get(value)
        except TypeError:
            return self._id_unhashable(value)
        if found is None:
            found = len(self.values)
            self._hashable[value] = found
            self.values.append(value)
        return found

    def _id_unhashable(self, value: Any) -> int:
        for other, number in self._unhashable:
            if other == value:
                return number
        number = len(self.values)
        self._unhashable.append((value, number))
        self.values.append(value)
        return number


@dataclass(slots=True)
class _Item:
    """An op as the search sees it: model code, interned arguments, effective window."""

    index: int  # position in the caller's sequence
    code: int
    val: int  # read: value returned; write/cas: new value
    exp: int  # cas: expected value; -1 otherwise
    call: float
    ret: float  # +inf while the outcome is unknown
    unknown: bool


@dataclass
class _Search:
    """What the search found: verdict, effort, and the deepest dead end for the explanation."""

    verdict: bool | None
    steps: int
    prefix: list[int] = field(default_factory=list)  # item numbers, in linearization order
    stuck: int = -1  # item whose return entry ended the longest prefix
    state: int = -1  # register value after that prefix


def _validate(ops: Sequence[Op]) -> None:
    """Reject histories the model cannot interpret rather than checking something else."""
    for i, op in enumerate(ops):
        if op.kind not in ("read", "write", "cas"):
            raise ValueError(f"op #{i}: unknown kind {op.kind!r}")
        if math.isnan(op.call) or math.isinf(op.call):
            raise ValueError(f"op #{i}: call time must be finite")
        if op.kind == "read" and (op.ret is None or math.isinf(op.ret)):
            raise ValueError(f"op #{i}: a read with unknown outcome carries no information; drop it")
        if op.ret is not None and op.ret < op.call:
            raise ValueError(f"op #{i}: returns before it is called")


def _encode(ops: Sequence[Op], interner: _Interner) -> tuple[list[_Item], list[int]]:
    """Turn ops into search items; writes definitely rejected (ok=False) had no effect and go."""
    items: list[_Item] = []
    rejected: list[int] = []
    for i, op in enumerate(ops):
        if op.kind == "write" and op.ok is False:
            rejected.append(i)
            continue
        unknown = op.unknown
        ret = math.inf if unknown or op.ret is None else op.ret
        if op.kind == "read":
            code, exp = _READ, -1
        elif op.kind == "write":
            code, exp = _WRITE, -1
        else:
            exp = interner.id(op.expected)
            code = _CAS_MAYBE if unknown else (_CAS_TRUE if op.ok else _CAS_FALSE)
        items.append(_Item(i, code, interner.id(op.value), exp, op.call, ret, unknown))
    return items, rejected


def _observed_value(item: _Item) -> int:
    """The value an op proves the register held, or -1 when it proves none."""
    if item.code == _READ:
        return item.val
    if item.code == _CAS_TRUE:
        return item.exp
    return -1


def _writes(item: _Item) -> bool:
    """Whether the op may set the register (definite-False cas and reads never do)."""
    return item.code in (_WRITE, _CAS_TRUE, _CAS_MAYBE)


def _impossible_observations(items: Sequence[_Item], init: int) -> list[_Item]:
    """Reads and definite-True cas that saw a value nobody ever wrote: they can never linearize."""
    written = {item.val for item in items if _writes(item)}
    written.update((init, -1))
    return [item for item in items if _observed_value(item) not in written]


def _droppable(p: _Item, observed: set[int], possible: set[int], refusals: Sequence[_Item]) -> bool:
    """Whether removing unknown-outcome op ``p`` provably changes nothing (see module docstring)."""
    if p.val in observed:
        return False
    for c in refusals:
        if c.ret < p.call or c.exp == p.val:
            continue  # strictly before p, or cannot sit where the register holds p's value
        if p.code == _CAS_MAYBE:
            if c.exp == p.exp:
                return False
        elif c.exp in possible:
            return False
    return True


def _drop_unobserved(items: list[_Item], init: int) -> tuple[list[_Item], list[_Item]]:
    """Remove unknown-outcome writes and cas nobody can tell apart from never having happened.

    Iterated to a fixpoint: dropping an unknown cas can leave the write it depended on
    unobserved. All candidates of a round are judged against the same (larger) history, which
    is conservative because every condition only gets easier as ops disappear.
    """
    kept = items
    dropped: list[_Item] = []
    refusals = [item for item in items if item.code == _CAS_FALSE]
    while True:
        observed = {_observed_value(item) for item in kept}
        observed.update(item.exp for item in kept if item.code == _CAS_MAYBE)
        possible = {item.val for item in kept if _writes(item)}
        possible.add(init)
        gone = [p for p in kept if p.unknown and _droppable(p, observed, possible, refusals)]
        if not gone:
            return kept, dropped
        ids = {id(p) for p in gone}
        kept = [item for item in kept if id(item) not in ids]
        dropped.extend(gone)


def _settled_refusals(items: Sequence[_Item], init: int) -> list[_Item]:
    """Definite-False cas whose answer holds wherever they are placed; removing them is exact.

    Cas C (expected e) returned False. If nobody wrote e and e is not the initial value, the
    register never holds e. Otherwise, if every writer of e is acknowledged and some
    acknowledged write or cas-True D started after all of them returned and itself returned
    before C was called, then every point of C's window comes after D, after which nothing
    writes e again: the register cannot hold e there. Such a C constrains nothing.
    """
    acked = sorted((item for item in items if not item.unknown and item.code in (_WRITE, _CAS_TRUE)),
                   key=lambda item: item.ret)
    rets = [item.ret for item in acked]
    latest_call: list[float] = []  # latest call among acked[:i + 1]
    for item in acked:
        latest_call.append(max(item.call, latest_call[-1]) if latest_call else item.call)
    writers: dict[int, list[_Item]] = {}
    for item in items:
        if _writes(item):
            writers.setdefault(item.val, []).append(item)
    settled: list[_Item] = []
    for c in items:
        if c.code != _CAS_FALSE:
            continue
        of_e = writers.get(c.exp, [])
        if not of_e and c.exp != init:
            settled.append(c)
            continue
        if any(w.unknown for w in of_e):
            continue
        last = max((w.ret for w in of_e), default=-math.inf)
        before = bisect_left(rets, c.call)
        if before and latest_call[before - 1] > last:
            settled.append(c)
    return settled


def _reduce(items: list[_Item], init: int) -> tuple[list[_Item], int]:
    """Apply the exact reductions until none applies; return the kept ops and how many went."""
    kept = items
    removed = 0
    while True:
        settled = {id(item) for item in _settled_refusals(kept, init)}
        kept = [item for item in kept if id(item) not in settled]
        kept, dropped = _drop_unobserved(kept, init)
        removed += len(settled) + len(dropped)
        if not settled and not dropped:
            return kept, removed


def _bound_observed(items: Sequence[_Item], init: int) -> int:
    """Give observed unknown-outcome ops with a unique value a finite return; count them.

    If only op P ever wrote v (and v is not the initial value), any observer of v is
    linearized after P, so P takes effect before the earliest observer returns.
    """
    writers = Counter(item.val for item in items if _writes(item))
    first_seen: dict[int, float] = {}
    for item in items:
        seen = _observed_value(item)
        if seen >= 0 and item.ret < first_seen.get(seen, math.inf):
            first_seen[seen] = item.ret
    bounded = 0
    for p in items:
        if not p.unknown or p.val == init or writers[p.val] != 1:
            continue
        limit = first_seen.get(p.val)
        if limit is not None and limit >= p.call:
            p.ret = limit
            bounded += 1
    return bounded


def _search(items: Sequence[_Item], init: int, max_steps: int) -> _Search:
    """Wing & Gong / Lowe search over the linked list of call and return entries (porcupine).

    Five refinements, none of which loses a linearization:

    * A read that matches the register, or a definite-False cas whose refusal holds, is placed
      at once and is the only choice tried there: moving it to the front of any successful
      continuation keeps that continuation valid (it changes nothing, and every op that must
      precede it is already placed), so if it leads nowhere, nothing does. Without this, the
      subsets of concurrent reads of one value make the search exponential.
    * Pending ops (return at +inf) are tried only after every definite candidate at the same
      point has failed, and are placed only where they change the register: a placement that
      changes nothing is the same as placing the op last, which always works.
    * An unknown cas with a finite (bounded) return must take effect, so it is never placed
      as a no-op either.
    * A pending op whose value nobody observes ("blind") is placed only where a refusal that
      could be placed now expects the current value: in a linearization where it sits
      elsewhere, it can be moved to the end, or later until just before the first refusal in
      its interval that expects the value it replaced (which is then free to go next).
    * Dominance: for a pending op P, if (S, v) has already failed then (S + P, v) fails too,
      because any continuation of the latter, followed by P at the very end, continues the
      former. Such configurations are skipped. (S, v) is in the cache and not on the current
      path exactly when it has failed: configurations on the path have fewer ops than S + P,
      except the current one, which is only compared with for the op being placed.
    """
    n = len(items)
    # Entry positions 1..2n in time order; 0 is the head sentinel, 2n+1 the tail sentinel.
    # On equal times calls sort first (kind 0 before 1): touching ops are concurrent.
    order = sorted(
        [(item.call, 0, k) for k, item in enumerate(items)] + [(item.ret, 1, k) for k, item in enumerate(items)]
    )
    size = 2 * n + 2
    op_of = [0] * size
    is_call = [False] * size
    ret_pos = [0] * n
    for pos, (_, kind, k) in enumerate(order, start=1):
        op_of[pos] = k
        is_call[pos] = kind == 0
        if kind == 1:
            ret_pos[k] = pos
    match = [0] * size
    for pos in range(1, size - 1):
        if is_call[pos]:
            match[pos] = ret_pos[op_of[pos]]
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    head = 0

    code = [item.code for item in items]
    val = [item.val for item in items]
    exp = [item.exp for item in items]
    pending = [1 if math.isinf(item.ret) else 0 for item in items]
    observed = {_observed_value(item) for item in items}
    observed.update(item.exp for item in items if item.code == _CAS_MAYBE)
    blind = [bool(p) and item.val not in observed for p, item in zip(pending, items)]
    bit = [1 << k for k in range(n)]
    pending_mask = sum(b for b, p in zip(bit, pending) if p)
    last_phase = 1 if pending_mask else 0

    remaining = n - sum(pending)
    state = init
    linearized = 0
    # Phases of the scan at one configuration: -1 look for an op that keeps the register as
    # it is (a matching read, a passing refusal); 0 definite ops that change it; 1 pending ops.
    phase = -1
    waiting = False  # phase 1: a refusal in the window expects the current value
    stack: list[tuple[int, int, int, bool]] = []  # (call entry lifted, value before, phase, waiting)
    cache: set[tuple[int, int]] = set()
    result = _Search(verdict=False, steps=0)
    best_depth = -1
    steps = 0
    entry = nxt[head]
    while remaining:
        if steps >= max_steps:
            result.verdict = None
            break
        dead = False
        if is_call[entry]:
            k = op_of[entry]
            c = code[k]
            if phase < 0:
                if c == _READ:
                    fits = state == val[k]
                else:
                    fits = c == _CAS_FALSE and state != exp[k]
                if not fits:
                    entry = nxt[entry]
                    continue
                grown = linearized | bit[k]
                key = (grown, state)
                if key in cache or _dominated(grown & pending_mask, grown, state, cache):
                    dead = True
                else:
                    cache.add(key)
                    steps += 1
                    stack.append((entry, state, -1, False))
                    linearized = grown
                    remaining -= 1
                    _lift(entry, match[entry], nxt, prv)
                    entry = nxt[head]
                    continue
            else:
                if pending[k] != phase or c == _READ or c == _CAS_FALSE or (blind[k] and not waiting):
                    entry = nxt[entry]
                    continue
                if c == _WRITE:
                    new = -1 if phase and state == val[k] else val[k]
                else:  # cas that succeeded, or unknown cas, which only matters where it applies
                    new = val[k] if state == exp[k] else -1
                if new >= 0:
                    grown = linearized | bit[k]
                    key = (grown, new)
                    if key not in cache and not _dominated(grown & pending_mask & ~bit[k], grown, new, cache):
                        cache.add(key)
                        steps += 1
                        stack.append((entry, state, phase, waiting))
                        state = new
                        linearized = grown
                        remaining -= 1 - pending[k]
                        _lift(entry, match[entry], nxt, prv)
                        phase = -1
                        entry = nxt[head]
                        continue
                entry = nxt[entry]
                continue
        if not dead and phase < last_phase:
            phase += 1
            entry = nxt[head]
            if phase == 1:
                waiting = _refusal_waits(entry, state, is_call, op_of, code, exp, nxt)
            continue
        if not dead and len(stack) > best_depth:
            best_depth = len(stack)
            result.prefix = [op_of[e] for e, _, _, _ in stack]
            result.stuck = op_of[entry]
            result.state = state
        # Undo choices. A configuration that had a state-keeping op fails with it (see above),
        # so such entries are undone without trying their siblings.
        phase = -1
        while phase < 0 and stack:
            entry, state, phase, waiting = stack.pop()
            k = op_of[entry]
            linearized ^= bit[k]
            remaining += 1 - pending[k]
            _unlift(entry, match[entry], nxt, prv)
        if phase < 0:
            break
        entry = nxt[entry]
    else:
        result.verdict = True
    result.steps = steps
    return result


def _refusal_waits(
    entry: int, state: int, is_call: list[bool], op_of: list[int], code: list[int], exp: list[int], nxt: list[int]
) -> bool:
    """Whether a definite-False cas that could be placed now is blocked by the current value."""
    while is_call[entry]:
        k = op_of[entry]
        if code[k] == _CAS_FALSE and exp[k] == state:
            return True
        entry = nxt[entry]
    return False


def _dominated(others: int, grown: int, new: int, cache: set[tuple[int, int]]) -> bool:
    """Whether (grown minus some pending op, new) already failed (see ``_search``)."""
    while others:
        low = others & -others
        if (grown ^ low, new) in cache:
            return True
        others ^= low
    return False


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Unlink an op's call and return entries (dancing links: they keep their own pointers)."""
    nxt[prv[call]] = nxt[call]
    prv[nxt[call]] = prv[call]
    nxt[prv[ret]] = nxt[ret]
    prv[nxt[ret]] = prv[ret]


def _unlift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Relink what ``_lift`` unlinked, in reverse order."""
    nxt[prv[ret]] = ret
    prv[nxt[ret]] = ret
    nxt[prv[call]] = call
    prv[nxt[call]] = call


def describe(op: Op, index: int | None = None) -> str:
    """One line a person can match against the test log."""
    where = f"#{index} " if index is not None else ""
    ret = "?" if op.ret is None else f"{op.ret:.6f}"
    if op.kind == "read":
        what = f"read() -> {op.value!r}"
    elif op.kind == "write":
        what = f"write({op.value!r}) -> {'ok' if op.ok and op.ret is not None else 'unknown'}"
    else:
        outcome = "unknown" if op.unknown else str(op.ok)
        what = f"cas({op.expected!r} -> {op.value!r}) -> {outcome}"
    return f"{where}client {op.client} {what} [{op.call:.6f}, {ret}]"


def _explain_violation(ops: Sequence[Op], items: Sequence[_Item], found: _Search, values: list[Any]) -> str:
    """Name the op that could not be placed, the longest valid prefix and the ops around it."""
    stuck = items[found.stuck]
    culprit = ops[stuck.index]
    lines = [
        f"not linearizable: {describe(culprit, stuck.index)} cannot be placed: {_need(culprit)}",
        f"the deepest attempt placed {len(found.prefix)} of {len(items)} ops and left the register "
        f"holding {values[found.state]!r}",
    ]
    tail = found.prefix[-5:]
    if tail:
        lines.append("last ops placed on that attempt:")
        lines.extend("  " + describe(ops[items[k].index], items[k].index) for k in tail)
    placed = set(found.prefix)
    around = [
        item for k, item in enumerate(items)
        if k not in placed and k != found.stuck and item.call <= stuck.ret and item.ret >= stuck.call
    ]
    if around:
        lines.append("unplaced ops overlapping it:")
        lines.extend("  " + describe(ops[item.index], item.index) for item in around[:10])
        if len(around) > 10:
            lines.append(f"  ... and {len(around) - 10} more")
    return "\n".join(lines)


def _need(op: Op) -> str:
    """What the register must hold for ``op`` to be placed."""
    after = "and no valid order of the ops that may precede it leaves the register so"
    if op.kind == "read":
        return f"it needs the register to hold {op.value!r}, {after}"
    if op.kind == "cas" and op.ok is False:
        return f"it needs the register not to hold {op.expected!r}, {after}"
    if op.kind == "cas":
        return f"it needs the register to hold {op.expected!r}, {after}"
    return "every way to go on after placing it fails"


def _explain_stale(ops: Sequence[Op], initial: Any) -> list[str]:
    """Extra, hand-checkable evidence appended to a violation."""
    index = {id(op): i for i, op in enumerate(ops)}
    return [
        f"stale read: {describe(read, index[id(read)])} began after {describe(newer, index[id(newer)])}"
        " had overwritten that value"
        for read, newer in stale_reads(ops, initial=initial)[:5]
    ]


def check_key(key: str, ops: Sequence[Op], initial: Any = None, *, max_steps: int = DEFAULT_MAX_STEPS) -> KeyResult:
    """Decide whether the history of one key is linearizable as a register starting at ``initial``.

    Returns ``linearizable=None`` when more than ``max_steps`` search steps would be needed:
    a large budget only delays the answer, it never changes a decided one.
    """
    _validate(ops)
    interner = _Interner()
    init = interner.id(initial)
    items, rejected = _encode(ops, interner)
    impossible = _impossible_observations(items, init)
    if impossible:
        lines = [f"not linearizable: {len(impossible)} op(s) observed a value no operation wrote:"]
        lines.extend("  " + describe(ops[item.index], item.index) for item in impossible[:10])
        return KeyResult(key, False, len(ops), "\n".join(lines), culprit=ops[impossible[0].index])
    kept, removed = _reduce(items, init)
    bounded = _bound_observed(kept, init)
    found = _search(kept, init, max_steps)
    dropped_count = removed + len(rejected)
    summary = (
        f"{len(ops)} ops, {dropped_count} that cannot matter dropped, "
        f"{bounded} unknown-outcome ops bounded by their first observer, {found.steps} steps"
    )
    if found.verdict is None:
        text = f"undecided: search budget of {max_steps} steps exhausted ({summary})"
        return KeyResult(key, None, len(ops), text, found.steps, dropped=dropped_count)
    if found.verdict:
        return KeyResult(key, True, len(ops), f"linearizable ({summary})", found.steps, dropped=dropped_count)
    text = "\n".join([_explain_violation(ops, kept, found, interner.values), *_explain_stale(ops, initial), summary])
    culprit = ops[kept[found.stuck].index]
    return KeyResult(key, False, len(ops), text, found.steps, culprit, dropped_count)


def check_history(
    history: Mapping[str, Sequence[Op]],
    initial: Mapping[str, Any] | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> list[KeyResult]:
    """Check every key on its own (linearizability is compositional); keys missing from
    ``initial`` start absent (None). ``max_steps`` applies to each key separately."""
    start: Mapping[str, Any] = initial if initial is not None else {}
    return [check_key(key, ops, start.get(key), max_steps=max_steps) for key, ops in history.items()]


def stale_reads(ops: Sequence[Op], *, initial: Any = None) -> list[tuple[Op, Op]]:
    """Reads that returned a value already overwritten before they began, with the proof.

    Read R returned v. Let the writers of v be every op that may have written v (the
    initial value counts as written at -inf). R is stale when all writers of v are
    acknowledged and there is an acknowledged write or definite-True cas W2 with
    ``W_v.ret < W2.call`` for every writer W_v and ``W2.ret < R.call``: in any linearization
    W_v < W2 < R and nothing writes v after W2, so R cannot see v. (W2 cannot itself write v:
    it starts after every writer of v has returned.) One pair (R, earliest-returning such W2)
    per stale read. A read of a value nobody wrote is not reported here: without a writer
    there is no "overwritten" to show, and ``check_key`` reports it. Pass the key's
    ``initial`` value, or reads of it are never reported.
    """
    interner = _Interner()
    writers: dict[int, list[Op]] = {}
    for op in ops:
        if op.may_write:
            writers.setdefault(interner.id(op.value), []).append(op)
    init = interner.id(initial)
    acked = sorted((op for op in ops if op.acknowledged), key=lambda op: op.ret or 0.0)
    rets = [op.ret or 0.0 for op in acked]
    latest_call: list[float] = []  # latest call among acked[:i + 1]
    for op in acked:
        latest_call.append(max(op.call, latest_call[-1]) if latest_call else op.call)
    found: list[tuple[Op, Op]] = []
    for read in ops:
        if read.kind != "read":
            continue
        value = interner.id(read.value)
        of_v = writers.get(value, [])
        if any(w.unknown for w in of_v) or (not of_v and value != init):
            continue
        last = max((w.ret or 0.0 for w in of_v), default=-math.inf)
        before = bisect_left(rets, read.call)
        if before and latest_call[before - 1] > last:
            newer = next(op for op in acked[:before] if op.call > last)
            found.append((read, newer))
    return found


def lost_writes(ops: Sequence[Op], final_value: Any) -> list[Op]:
    """Acknowledged writes the service lost, judged from one definite read after everything.

    ``final_value`` must come from a read that began after every op had returned and the
    faults had healed. W (an acknowledged write or definite-True cas) is reported when:

    1. every other acknowledged write / definite-True cas returned before W was called, so W
       is the last definite change in real time and nothing definite can come after it;
    2. ``final_value != W.value``; and
    3. no unknown-outcome write or cas has ``final_value`` as its new value, so nothing that
       may have taken effect after W (an unknown op may apply at any time after its call,
       however early it started) can have restored ``final_value``.

    Then every linearization that ends with the final read puts W before it and nothing that
    writes ``final_value`` after W, so the final read cannot return ``final_value``: W's effect
    was lost. At most one op is returned. Concurrent final writes (two acknowledged writes
    overlapping at the end) are never reported: either order is allowed.
    """
    acked = [op for op in ops if op.acknowledged]
    if not acked:
        return []
    last = max(acked, key=lambda op: op.ret or 0.0)
    if any(op is not last and (op.ret or 0.0) >= last.call for op in acked):
        return []
    if last.value == final_value:
        return []
    if any(op.unknown and op.may_write and op.value == final_value for op in ops):
        return []
    return [last]


def _benchmark(seed: int = 1, n_ops: int = 2000, clients: int = 12, unknown: int = 50) -> tuple[float, float]:
    """Time ``check_key`` on a generated linearizable history and on a copy with one stale read.

    Used to produce the figure in the module docstring: ``python -m tests.faults.checker``.
    """
    import random
    from dataclasses import replace

    rng = random.Random(seed)
    free = [0.0] * clients
    plan: list[tuple[float, int, float, float, str, bool, bool]] = []
    for i in range(n_ops):
        client = rng.randrange(clients)
        call = free[client] + rng.uniform(0.0, 0.05)
        duration = rng.uniform(0.001, 0.2)
        kind = rng.choices(["read", "write", "cas"], [45, 35, 20])[0]
        is_unknown = kind != "read" and i % (n_ops // unknown) == 0
        point = call + rng.uniform(0.0, duration * (4 if is_unknown else 1))
        free[client] = call + duration
        plan.append((point, client, call, call + duration, kind, is_unknown, rng.random() < 0.5))
    plan.sort()
    state: Any = None
    counter = 0
    ops: list[Op] = []
    for point, client, call, ret, kind, is_unknown, effect in plan:
        if kind == "read":
            ops.append(Op(client, "read", call, ret, state))
            continue
        counter += 1
        if kind == "write":
            if not is_unknown or effect:
                state = counter
            ops.append(Op(client, "write", call, None if is_unknown else ret, counter, ok=None if is_unknown else True))
            continue
        expected = state if rng.random() < 0.6 else rng.randrange(counter)
        success = state == expected
        if success and (not is_unknown or effect):
            state = counter
        outcome = None if is_unknown else success
        ops.append(Op(client, "cas", call, None if is_unknown else ret, counter, expected, outcome))
    ops.sort(key=lambda op: op.call)
    started = time.perf_counter()
    good = check_key("bench", ops)
    good_time = time.perf_counter() - started
    assert good.linearizable is True, good.explanation
    bad_ops = list(ops)
    middle = n_ops // 2
    old = next(op for op in ops[: middle // 2] if op.kind == "write" and op.acknowledged)
    target = next(i for i in range(middle, n_ops) if ops[i].kind == "read")
    bad_ops[target] = replace(ops[target], value=old.value)
    started = time.perf_counter()
    bad = check_key("bench", bad_ops)
    bad_time = time.perf_counter() - started
    assert bad.linearizable is False, bad.explanation
    print(good.explanation.splitlines()[0])
    print(bad.explanation.splitlines()[0], "|", bad.explanation.splitlines()[-1])
    return good_time, bad_time


if __name__ == "__main__":
    for seed in range(5):
        print(seed, _benchmark(seed))
