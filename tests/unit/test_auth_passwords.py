"""The dummy bcrypt hash that keeps an unknown user's login as slow as a real one."""

from __future__ import annotations

import bcrypt

from core.identity import DUMMY_HASH as _DUMMY_HASH


def _cost(hashed: str) -> int:
    return int(hashed.split("$")[2])


def test_the_dummy_hash_costs_what_a_new_password_hash_costs() -> None:
    # same rounds as hash_password's bcrypt.gensalt(), so "no such user" and
    # "wrong password" do the same bcrypt work
    assert _cost(_DUMMY_HASH) == _cost(bcrypt.gensalt().decode())
    assert _DUMMY_HASH.startswith("$2b$")
    # a well-formed hash: checkpw runs it through and simply says no
    assert bcrypt.checkpw(b"not-a-real-password", _DUMMY_HASH.encode()) is False
    assert bcrypt.checkpw(b"", _DUMMY_HASH.encode()) is False
