"""Users (spec §2.12).

``password`` is input only and ``password_hash`` is internal: neither is ever in
:meth:`User.to_wire`.  The store keeps the hash (:meth:`User.to_store`).  bcrypt itself
is the API layer's job (it is slow, so it runs in a worker thread); this module only
states the rules and the exact error texts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, Self

from .common import bool_field, join_field
from .errors import ValidationError
from .meta import USERNAME_RE, WireReader, check_name, list_or_none

__all__ = [
    "BCRYPT_PREFIXES",
    "HASH_MISMATCH",
    "MIN_PASSWORD_LENGTH",
    "PASSWORD_REQUIRED",
    "User",
    "user_fields",
]

MIN_PASSWORD_LENGTH: Final = 8
BCRYPT_PREFIXES: Final = ("$2a$", "$2b$", "$2y$")
PASSWORD_REQUIRED: Final = "a password or its hash is required"
HASH_MISMATCH: Final = (
    "hashed password does not the match the cleartext password, only one of those should be provided"
)


@dataclass(slots=True, kw_only=True)
class User:
    """A user.  ``disabled`` users keep their record (soft delete) but cannot log in."""

    KIND: ClassVar[str] = "User"

    username: str = ""
    groups: list[str] | None = None
    disabled: bool = False
    password: str = ""
    password_hash: str = ""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            username=r.get_str("username"),
            groups=r.get_str_list("groups"),
            disabled=r.get_bool("disabled"),
            password=r.get_str("password"),
            password_hash=r.get_str("password_hash"),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        r = WireReader(d)
        return cls(
            username=r.get_str("username"),
            groups=r.get_str_list("groups"),
            disabled=r.get_bool("disabled"),
            password_hash=r.get_str("password_hash"),
        )

    def to_wire(self) -> dict[str, Any]:
        """``{"username","groups"?,"disabled"}``: never a password or hash."""
        out: dict[str, Any] = {"username": self.username}
        if self.groups:
            out["groups"] = list(self.groups)
        out["disabled"] = self.disabled
        return out

    def to_store(self) -> dict[str, Any]:
        """The wire shape plus ``password_hash``; the cleartext password is never stored."""
        out = self.to_wire()
        if self.groups is not None:
            out["groups"] = list(self.groups)
        out["password_hash"] = self.password_hash
        return out

    def validate(self) -> None:
        """Username and password rules of spec §2.12 that need no bcrypt.

        When both ``password`` and ``password_hash`` are given the caller must still
        check that they match (bcrypt, off the event loop) and raise
        :meth:`hash_mismatch_error` if not.
        """
        check_name(self.username, "username", USERNAME_RE)
        if not self.password and not self.password_hash:
            raise ValidationError("password", PASSWORD_REQUIRED, verbatim=True)
        if self.password_hash and not self.password_hash.startswith(BCRYPT_PREFIXES):
            raise ValidationError("password_hash", "must be a bcrypt hash ($2a$, $2b$ or $2y$)")
        if self.password and not self.password_hash and len(self.password) < MIN_PASSWORD_LENGTH:
            raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
        for i, group in enumerate(self.groups or ()):
            if not group:
                raise ValidationError(f"groups[{i}]", "must not be empty")

    @property
    def needs_hashing(self) -> bool:
        """Only a cleartext password was given: hash it before storing."""
        return bool(self.password) and not self.password_hash

    @property
    def needs_pair_check(self) -> bool:
        """Both were given: they must match (:data:`HASH_MISMATCH` otherwise)."""
        return bool(self.password) and bool(self.password_hash)

    def with_password_hash(self, password_hash: str) -> User:
        """A copy holding ``password_hash`` and no cleartext, ready for :meth:`to_store`."""
        return replace(self, password="", password_hash=password_hash, groups=list_or_none(self.groups))

    @staticmethod
    def hash_mismatch_error() -> ValidationError:
        return ValidationError("password_hash", HASH_MISMATCH, verbatim=True)


def user_fields(user: User) -> dict[str, str]:
    """Field-selector values of a user (spec §1.9): no name, no labels."""
    return {
        "user.username": user.username,
        "user.disabled": bool_field(user.disabled),
        "user.groups": join_field(user.groups),
    }
