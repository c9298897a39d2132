"""User: spec §2.12 (username regex, password rules, disabled always, no password on the wire)."""

from __future__ import annotations

import pytest

from core.resources import HASH_MISMATCH, PASSWORD_REQUIRED, User, ValidationError, WireTypeError
from core.resources.user import user_fields

HASH = "$2b$10$" + "x" * 53


def reason(u: User) -> str:
    with pytest.raises(ValidationError) as info:
        u.validate()
    return info.value.reason


def test_spec_shape_round_trips() -> None:
    wire = {"username": "alice", "groups": ["ops"], "disabled": False}
    u = User.from_wire({**wire, "password": "P@ssw0rd!"})
    u.validate()
    assert u.to_wire() == wire


def test_disabled_always_groups_omitempty() -> None:
    assert User.from_wire({"username": "a"}).to_wire() == {"username": "a", "disabled": False}
    assert User.from_wire({"username": "a", "groups": []}).to_wire() == {"username": "a", "disabled": False}


def test_password_and_hash_never_on_the_wire() -> None:
    u = User.from_wire({"username": "a", "password": "P@ssw0rd!", "password_hash": HASH})
    wire = u.to_wire()
    assert "password" not in wire and "password_hash" not in wire


def test_store_keeps_hash_not_password() -> None:
    u = User.from_wire({"username": "a", "password": "P@ssw0rd!", "groups": ["g"]}).with_password_hash(HASH)
    stored = u.to_store()
    assert stored == {"username": "a", "groups": ["g"], "disabled": False, "password_hash": HASH}
    back = User.from_store(stored)
    assert back.password_hash == HASH and back.password == "" and back.groups == ["g"]


def test_from_store_ignores_a_cleartext_password() -> None:
    assert User.from_store({"username": "a", "password": "leak", "password_hash": HASH}).password == ""


def test_username_regex() -> None:
    assert reason(User.from_wire({"username": "Alice", "password": "P@ssw0rd!"})) == (
        "username: cannot contain spaces or special characters"
    )
    User.from_wire({"username": "a.b-c_1", "password": "P@ssw0rd!"}).validate()


def test_username_required() -> None:
    assert reason(User.from_wire({"password": "P@ssw0rd!"})) == "username: must not be empty"


def test_password_or_hash_required() -> None:
    assert reason(User.from_wire({"username": "a"})) == PASSWORD_REQUIRED
    assert PASSWORD_REQUIRED == "a password or its hash is required"


def test_password_length() -> None:
    assert reason(User.from_wire({"username": "a", "password": "short"})) == (
        "password: must be at least 8 characters"
    )


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_hash_alone_is_accepted(prefix: str) -> None:
    u = User.from_wire({"username": "a", "password_hash": prefix + "10$" + "x" * 53})
    u.validate()
    assert not u.needs_hashing and not u.needs_pair_check


def test_hash_must_be_bcrypt() -> None:
    assert reason(User.from_wire({"username": "a", "password_hash": "md5:abc"})) == (
        "password_hash: must be a bcrypt hash ($2a$, $2b$ or $2y$)"
    )


def test_pair_check_flags_and_mismatch_text() -> None:
    u = User.from_wire({"username": "a", "password": "P@ssw0rd!", "password_hash": HASH})
    u.validate()
    assert u.needs_pair_check and not u.needs_hashing
    err = User.hash_mismatch_error()
    assert err.reason == HASH_MISMATCH == (
        "hashed password does not the match the cleartext password, only one of those should be provided"
    )
    assert User.from_wire({"username": "a", "password": "P@ssw0rd!"}).needs_hashing


def test_wrong_type() -> None:
    with pytest.raises(WireTypeError) as info:
        User.from_wire({"username": "a", "disabled": "false"})
    assert info.value.reason == "disabled: expected a boolean, got string"


def test_fields() -> None:
    assert user_fields(User.from_wire({"username": "a", "groups": ["x", "y"], "disabled": True})) == {
        "user.username": "a", "user.disabled": "true", "user.groups": "x,y",
    }
