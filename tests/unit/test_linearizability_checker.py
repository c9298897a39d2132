"""Self-test of the per-key linearizability checker on histories whose verdict is known.

The checker judges the fault-injection runs, so it must accept every history a correct
register can produce and reject the classic anomalies. Beyond hand-written cases, random
histories are generated from a real sequential register (linearizable by construction),
then corrupted with one stale read, and small random histories are compared with a plain
exhaustive search that uses none of the checker's reductions or pruning.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest

from tests.faults.checker import KeyResult, Op, check_history, check_key, lost_writes, stale_reads


def rd(client: int, call: float, ret: float, value: Any) -> Op:
    return Op(client, "read", call, ret, value)


def wr(client: int, call: float, ret: float | None, value: Any, ok: bool | None = True) -> Op:
    return Op(client, "write", call, ret, value, ok=None if ret is None else ok)


def cas(client: int, call: float, ret: float | None, expected: Any, new: Any, ok: bool | None) -> Op:
    return Op(client, "cas", call, ret, new, expected, ok)


def verdict(ops: list[Op], initial: Any = None, **kwargs: Any) -> bool | None:
    return check_key("k", ops, initial, **kwargs).linearizable


# --- hand-written histories -------------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    ops = [
        rd(0, 0, 1, None),
        wr(0, 2, 3, 1),
        rd(1, 4, 5, 1),
        cas(1, 6, 7, 1, 2, True),
        rd(0, 8, 9, 2),
        cas(0, 10, 11, 1, 3, False),
        rd(1, 12, 13, 2),
    ]
    result = check_key("k", ops)
    assert result.linearizable is True
    assert result.ops == len(ops)
    assert stale_reads(ops) == []


@pytest.mark.parametrize("order", [(1, 2), (2, 1)])
def test_concurrent_writes_may_be_seen_in_either_order(order: tuple[int, int]) -> None:
    first, second = order
    ops = [
        wr(0, 0, 10, 1),
        wr(1, 1, 9, 2),
        rd(2, 2, 5, first),
        rd(2, 6, 8, second),
        rd(3, 11, 12, second),
    ]
    assert verdict(ops) is True


def test_stale_read_is_not_linearizable_and_is_reported() -> None:
    w1 = wr(0, 0, 1, 1)
    w2 = wr(0, 2, 3, 2)
    stale = rd(1, 4, 5, 1)
    ops = [w1, w2, stale]
    result = check_key("k", ops)
    assert result.linearizable is False
    assert result.culprit == stale
    assert "stale read" in result.explanation
    assert stale_reads(ops) == [(stale, w2)]


def test_read_of_value_never_written_is_not_linearizable() -> None:
    ghost = rd(1, 2, 3, 99)
    result = check_key("k", [wr(0, 0, 1, 1), ghost])
    assert result.linearizable is False
    assert result.culprit == ghost
    assert "no operation wrote" in result.explanation
    assert stale_reads([wr(0, 0, 1, 1), ghost]) == []


def test_cas_refused_while_register_provably_held_expected() -> None:
    """A 412 for the current ETag: nothing else could have changed the value."""
    refused = cas(1, 2, 3, 1, 2, False)
    ops = [wr(0, 0, 1, 1), refused, rd(0, 4, 5, 1)]
    result = check_key("k", ops)
    assert result.linearizable is False
    assert result.culprit == refused


def test_cas_refused_during_concurrent_write_is_fine() -> None:
    ops = [wr(0, 0, 1, 1), wr(2, 1.5, 4, 3), cas(1, 2, 3, 1, 2, False), rd(0, 5, 6, 3)]
    assert verdict(ops) is True


def test_read_absent_after_key_provably_existed() -> None:
    gone = rd(1, 2, 3, None)
    ops = [wr(0, 0, 1, "v1"), gone]
    result = check_key("k", ops)
    assert result.linearizable is False
    assert result.culprit == gone
    assert stale_reads(ops) == [(gone, ops[0])]


def test_read_absent_concurrent_with_first_write_is_fine() -> None:
    assert verdict([wr(0, 0, 3, "v1"), rd(1, 1, 2, None), rd(1, 4, 5, "v1")]) is True


def test_unknown_write_later_observed_is_linearizable() -> None:
    ops = [wr(0, 0, 1, 1), wr(1, 2, None, 2), rd(0, 50, 51, 2), rd(2, 52, 53, 2)]
    result = check_key("k", ops)
    assert result.linearizable is True
    assert "1 unknown-outcome ops bounded" in result.explanation


def test_unknown_write_with_error_reply_may_apply_after_the_reply() -> None:
    """A 5xx at time 3 does not mean the write was not applied at time 10."""
    ops = [wr(0, 0, 1, 1), Op(1, "write", 2, 3, 2, ok=None), rd(0, 4, 5, 1), rd(0, 10, 11, 2)]
    assert verdict(ops) is True


def test_unknown_write_never_observed_is_linearizable() -> None:
    ops = [wr(0, 0, 1, 1), wr(1, 2, None, 2), rd(0, 3, 4, 1), rd(2, 50, 51, 1)]
    result = check_key("k", ops)
    assert result.linearizable is True
    assert result.dropped == 1


def test_unknown_write_needed_to_explain_a_refusal_is_kept() -> None:
    """Its value is never read, but only it can explain the 412: dropping it would be wrong."""
    ops = [wr(1, 0.5, None, 1), cas(0, 1, 2, None, 2, False)]
    assert verdict(ops) is True
    assert verdict([cas(0, 1, 2, None, 2, False)]) is False


def test_unknown_cas_chain_observed_through_its_successor() -> None:
    ops = [wr(0, 0, None, 1), cas(1, 1, None, 1, 2, None), rd(2, 5, 6, 2)]
    assert verdict(ops) is True
    without_write = [cas(1, 1, None, 1, 2, None), rd(2, 5, 6, 2)]
    assert verdict(without_write) is False


def test_unknown_cas_applies_only_when_expected_matches() -> None:
    ops = [wr(0, 0, 1, 1), cas(1, 2, None, 7, 2, None), rd(0, 5, 6, 2)]
    assert verdict(ops) is False


def test_rejected_write_has_no_effect() -> None:
    ops = [wr(0, 0, 1, 1), wr(1, 2, 3, 2, ok=False), rd(0, 4, 5, 1)]
    assert verdict(ops) is True


def test_lost_acknowledged_write() -> None:
    w1 = wr(0, 0, 1, 1)
    w2 = wr(1, 2, 3, 2)
    assert lost_writes([w1, w2], final_value=1) == [w2]
    assert verdict([w1, w2, rd(9, 100, 101, 1)]) is False
    assert lost_writes([w1, w2], final_value=2) == []


def test_lost_writes_stays_quiet_when_the_final_value_has_an_explanation() -> None:
    w1 = wr(0, 0, 1, 1)
    w2 = wr(1, 2, 3, 2)
    overlapping = wr(2, 2.5, 4, 1.5)
    assert lost_writes([w1, w2, overlapping], final_value=1.5) == []
    assert lost_writes([w1, w2, overlapping], final_value=1) == []  # w2 is not last on its own
    pending_restore = wr(3, 0.5, None, 1)  # values are normally unique; if not, stay quiet
    assert lost_writes([w1, w2, pending_restore], final_value=1) == []
    pending_other = wr(3, 0.5, None, 3)
    assert lost_writes([w1, w2, pending_other], final_value=1) == [w2]
    assert verdict([w1, w2, pending_other, rd(9, 100, 101, 1)]) is False


def test_reads_disagreeing_on_order() -> None:
    ops = [
        wr(0, 0, 1, 1),
        wr(1, 2, 20, 2),
        rd(2, 3, 4, 1),
        rd(2, 5, 6, 2),
        rd(3, 7, 8, 1),
    ]
    result = check_key("k", ops)
    assert result.linearizable is False
    assert result.culprit == ops[-1]
    assert stale_reads(ops) == []  # the write of 2 never completed before: only the search sees it


def test_return_and_call_at_the_same_instant_count_as_concurrent() -> None:
    assert verdict([wr(0, 0, 5, 1), rd(1, 5, 6, None)]) is True
    assert verdict([wr(0, 0, 5, 1), rd(1, 5.001, 6, None)]) is False


def test_initial_value_and_unhashable_values() -> None:
    assert verdict([rd(0, 0, 1, {"a": 1}), wr(1, 2, 3, {"b": [2]}), rd(0, 4, 5, {"b": [2]})], {"a": 1}) is True
    assert verdict([rd(0, 0, 1, {"a": 1}), wr(1, 2, 3, {"b": [2]}), rd(0, 4, 5, {"a": 1})], {"a": 1}) is False


def test_unknown_outcome_read_is_rejected() -> None:
    with pytest.raises(ValueError):
        check_key("k", [Op(0, "read", 0, None, 1)])


def test_check_history_checks_each_key() -> None:
    history = {
        "good": [wr(0, 0, 1, 1), rd(1, 2, 3, 1)],
        "bad": [wr(0, 0, 1, 1), rd(1, 2, 3, 0)],
    }
    results = check_history(history, {"bad": 0})
    assert [(r.key, r.linearizable) for r in results] == [("good", True), ("bad", False)]
    assert all(isinstance(r, KeyResult) for r in results)


def test_search_budget_exhausted_is_undecided() -> None:
    """Eight fully concurrent writes, then two reads in an impossible order."""
    ops = [wr(i, 0, 10, i + 1) for i in range(8)] + [rd(9, 11, 12, 1), rd(9, 13, 14, 2)]
    tiny = check_key("k", ops, max_steps=20)
    assert tiny.linearizable is None
    assert "budget" in tiny.explanation
    assert check_key("k", ops).linearizable is False


# --- generated histories ----------------------------------------------------------------


def simulate(rng: random.Random, n_ops: int, clients: int, unknown_rate: float) -> list[Op]:
    """Ops of sequential clients against an atomic register, each applied at a random instant
    of its window, so the history is linearizable by construction.

    Unknown-outcome writes and cas take effect with probability 1/2, possibly after the
    client gave up. A cas expects the value its client last read (realistic 412s) or the
    current value.
    """
    free = [0.0] * clients
    plan: list[tuple[float, int, float, float, str, bool, bool]] = []
    for _ in range(n_ops):
        client = rng.randrange(clients)
        call = free[client] + rng.uniform(0.0, 0.3)
        duration = rng.uniform(0.01, 1.0)
        kind = rng.choices(["read", "write", "cas"], [4, 3, 3])[0]
        unknown = kind != "read" and rng.random() < unknown_rate
        point = call + rng.uniform(0.0, duration * (3.0 if unknown else 1.0))
        free[client] = call + duration
        plan.append((point, client, call, call + duration, kind, unknown, not unknown or rng.random() < 0.5))
    plan.sort()
    state: Any = None
    last_read: dict[int, Any] = {}
    counter = 0
    ops: list[Op] = []
    for _, client, call, ret, kind, unknown, effect in plan:
        reply: float | None = (ret if rng.random() < 0.5 else None) if unknown else ret
        if kind == "read":
            ops.append(rd(client, call, ret, state))
            last_read[client] = state
            continue
        counter += 1
        if kind == "write":
            if effect:
                state = counter
            ops.append(Op(client, "write", call, reply, counter, ok=None if unknown else True))
            continue
        expected = last_read.get(client) if rng.random() < 0.7 else state
        success = state == expected
        if success and effect:
            state = counter
        ops.append(Op(client, "cas", call, reply, counter, expected, None if unknown else success))
    ops.sort(key=lambda op: op.call)
    return ops


def stale_candidates(ops: list[Op]) -> list[tuple[int, Any]]:
    """(read index, value) pairs: the value's acknowledged writer was overwritten by another
    acknowledged write that completed before the read began."""
    acked = [op for op in ops if op.acknowledged]
    found = []
    for i, op in enumerate(ops):
        if op.kind != "read":
            continue
        for old in acked:
            if old.value == op.value:
                continue
            newer = [w for w in acked if w.call > (old.ret or 0.0) and (w.ret or 0.0) < op.call]
            if newer:
                found.append((i, old.value))
                break
    return found


@pytest.mark.parametrize("seed", range(6))
def test_generated_histories_pass_and_one_stale_read_fails(seed: int) -> None:
    rng = random.Random(seed)
    ops = simulate(rng, n_ops=300, clients=6, unknown_rate=0.1)
    good = check_key("k", ops)
    assert good.linearizable is True, good.explanation
    assert stale_reads(ops) == []

    index, value = rng.choice(stale_candidates(ops))
    mutated = list(ops)
    mutated[index] = replace(ops[index], value=value)
    bad = check_key("k", mutated)
    assert bad.linearizable is False, bad.explanation
    assert any(read is mutated[index] for read, _ in stale_reads(mutated))


def test_large_concurrent_history_decides_quickly() -> None:
    rng = random.Random(2026)
    ops = simulate(rng, n_ops=2000, clients=12, unknown_rate=0.03)
    result = check_key("k", ops)
    assert result.linearizable is True, result.explanation
    assert result.steps < 1_000_000


# --- comparison with an exhaustive search -----------------------------------------------


def brute_force(ops: list[Op], initial: Any) -> bool:
    """Try every order that respects real time; unknown-outcome ops may apply or not."""
    n = len(ops)
    ends = [math.inf if op.unknown or op.ret is None else op.ret for op in ops]
    before = [[j for j in range(n) if ends[j] < ops[i].call] for i in range(n)]
    seen: set[tuple[int, int]] = set()
    values: list[Any] = []

    def number(value: Any) -> int:
        if value not in values:
            values.append(value)
        return values.index(value)

    def step(op: Op, state: Any) -> list[Any]:
        if op.kind == "read":
            return [state] if op.value == state else []
        if op.kind == "write":
            outcomes = [op.value] if op.ok is not False else [state]
        elif op.ok is True:
            outcomes = [op.value] if state == op.expected else []
        elif op.ok is False and not op.unknown:
            outcomes = [state] if state != op.expected else []
        else:
            outcomes = [op.value] if state == op.expected else []
        if op.unknown:
            outcomes.append(state)
        return outcomes

    def search(done: int, state: Any) -> bool:
        if done == (1 << n) - 1:
            return True
        key = (done, number(state))
        if key in seen:
            return False
        seen.add(key)
        for i, op in enumerate(ops):
            if done >> i & 1 or any(not done >> j & 1 for j in before[i]):
                continue
            if any(search(done | 1 << i, after) for after in step(op, state)):
                return True
        return False

    return search(0, initial)


def random_small_history(rng: random.Random) -> tuple[list[Op], Any]:
    """Arbitrary (mostly not linearizable) histories with a small value pool, so values repeat."""
    pool = [None, 1, 2, 3]
    ops: list[Op] = []
    for _ in range(rng.randint(1, 7)):
        call = round(rng.uniform(0, 6), 1)
        ret: float | None = round(call + rng.uniform(0, 3), 1)
        kind = rng.choice(["read", "write", "cas"])
        if kind == "read":
            ops.append(rd(0, call, ret or call, rng.choice(pool)))
            continue
        ok: bool | None = rng.choice([True, True, False, None]) if kind == "cas" else rng.choice([True, True, None])
        if ok is None and rng.random() < 0.5:
            ret = None
        expected = rng.choice(pool) if kind == "cas" else None
        ops.append(Op(0, kind, call, ret, rng.choice(pool[1:]), expected, ok))
    return ops, rng.choice(pool)


def test_agrees_with_exhaustive_search_on_small_random_histories() -> None:
    """Also: whatever stale_reads or lost_writes report must really be a violation."""
    rng = random.Random(7)
    outcomes = {True: 0, False: 0}
    reported = 0
    for _ in range(3000):
        ops, initial = random_small_history(rng)
        expected = brute_force(ops, initial)
        got = check_key("k", ops, initial).linearizable
        assert got is expected, (ops, initial)
        outcomes[expected] += 1
        if stale_reads(ops, initial=initial):
            assert expected is False, (ops, initial)
            reported += 1
        final = rng.choice([None, 1, 2, 3])
        if lost_writes(ops, final):
            assert brute_force([*ops, rd(9, 100, 101, final)], initial) is False, (ops, initial, final)
            reported += 1
    assert min(outcomes.values()) > 300  # both verdicts are well exercised
    assert reported > 100


def test_agrees_with_exhaustive_search_on_generated_histories() -> None:
    """Realistic small histories: linearizable ones and copies with one read changed."""
    rng = random.Random(11)
    for _ in range(300):
        ops = simulate(rng, n_ops=rng.randint(2, 9), clients=3, unknown_rate=0.3)
        assert check_key("k", ops).linearizable is True
        reads = [i for i, op in enumerate(ops) if op.kind == "read"]
        if not reads:
            continue
        i = rng.choice(reads)
        choices = [None, *(op.value for op in ops if op.kind != "read")]
        mutated = list(ops)
        mutated[i] = replace(ops[i], value=rng.choice(choices))
        assert check_key("k", mutated).linearizable is brute_force(mutated, None), mutated
