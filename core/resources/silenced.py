"""Silenced entries (spec §2.9, runtime §7.1): mute matching check events for a while.

Three rules the Ansible ``silence`` module depends on live here:

* the name is always ``<subscription or *>:<check or *>`` (:meth:`Silenced.computed_name`),
  whatever ``metadata.name`` said;
* an entry without expiry reads back ``"expire": -1``;
* an entry with expiry reads back the *stored* ``expire``, not a countdown, next to
  ``expire_at`` (a countdown would make every playbook run report a change).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, Self

from .common import bool_field
from .errors import ValidationError
from .meta import NAME_RE, SUBSCRIPTION_RE, ObjectMeta, WireReader, decode_meta

__all__ = ["NO_EXPIRY", "WILDCARD", "Silenced", "silenced_fields", "silenced_name"]

WILDCARD: Final = "*"
NO_EXPIRY: Final = -1
"""``expire`` as read back when the entry never expires."""


def silenced_name(subscription: str, check: str) -> str:
    """``<subscription or *>:<check or *>`` (``linux:*``, ``*:disk``, ``entity:web01:disk``)."""
    return f"{subscription or WILDCARD}:{check or WILDCARD}"


@dataclass(slots=True, kw_only=True)
class Silenced:
    """A silence.  ``begin``/``expire_at`` are Unix seconds; ``expire_at == 0`` means never."""

    KIND: ClassVar[str] = "Silenced"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    expire: int = 0
    expire_on_resolve: bool = False
    creator: str = ""
    check: str = ""
    reason: str = ""
    subscription: str = ""
    begin: int = 0
    expire_at: int = 0

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            expire=r.get_int("expire", "int64"),
            expire_on_resolve=r.get_bool("expire_on_resolve"),
            creator=r.get_str("creator"),
            check=r.get_str("check"),
            reason=r.get_str("reason"),
            subscription=r.get_str("subscription"),
            begin=r.get_int("begin", "int64"),
            expire_at=r.get_int("expire_at", "int64"),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        """The stored shape: ``expire`` exactly as written."""
        return self._shape(self.expire)

    def to_wire(self) -> dict[str, Any]:
        """The core/v2 GET shape: ``expire`` is -1 without expiry, else as stored."""
        return self._shape(self.expire if self.has_expiry and self.expire > 0 else NO_EXPIRY)

    def _shape(self, expire: int) -> dict[str, Any]:
        out: dict[str, Any] = {"metadata": self.metadata.to_wire(), "expire": expire,
                               "expire_on_resolve": self.expire_on_resolve}
        if self.creator:
            out["creator"] = self.creator
        if self.check:
            out["check"] = self.check
        if self.reason:
            out["reason"] = self.reason
        if self.subscription:
            out["subscription"] = self.subscription
        out["begin"] = self.begin
        out["expire_at"] = self.expire_at
        return out

    @property
    def has_expiry(self) -> bool:
        return self.expire_at > 0

    def computed_name(self) -> str:
        return silenced_name(self.subscription, self.check)

    def with_defaults(self, now: int, creator: str) -> Silenced:
        """The entry as stored by a write at ``now`` by ``creator`` (spec §2.9).

        Sets the computed name, ``creator`` (the body's value is overwritten), ``begin``
        (now when 0) and, when ``expire > 0`` and ``expire_at`` is 0, ``expire_at =
        begin + expire``.  Pure: ``now`` comes from the caller so replicas agree.
        """
        meta = self.metadata.copy()
        meta.name = self.computed_name()
        begin = self.begin or now
        expire_at = self.expire_at
        if expire_at == 0 and self.expire > 0:
            expire_at = begin + self.expire
        return replace(self, metadata=meta, creator=creator, begin=begin, expire_at=expire_at)

    def with_expiry_policy(self, now: int, *, default_s: float, max_s: float) -> Silenced:
        """Sensu Go 6.12's silence expiry limits, applied after :meth:`with_defaults`.

        An entry without expiry expires ``default_s`` seconds after it begins
        (``default-silenced-expiry-time``; 0 keeps it forever, as before 6.12);
        ``expire`` still reads back as -1, because none was asked for. An
        entry that would be in force for more than ``max_s`` seconds
        (``max-silenced-expiry-time-allowed``; 0 = no limit) is refused with a
        :class:`ValidationError` on ``expire`` naming the limit. The time in
        force counts from ``begin``, or from ``now`` when it has begun, so a
        maintenance window booked ahead with the default expiry is accepted.
        """
        entry = self
        if not entry.has_expiry and default_s > 0:
            entry = replace(entry, expire_at=entry.begin + int(default_s))
        start = max(entry.begin, now)
        if max_s > 0 and entry.has_expiry and entry.expire_at - start > int(max_s):
            raise ValidationError(
                "expire", f"the silence would be in force for {entry.expire_at - start}s, beyond "
                          f"max-silenced-expiry-time-allowed ({int(max_s)}s)")
        return entry

    def is_expired(self, now: int) -> bool:
        """Past ``expire_at``: deleted and never returned."""
        return self.has_expiry and now >= self.expire_at

    def is_active(self, now: int) -> bool:
        """In force: begun and not expired (runtime §7.2)."""
        return self.begin <= now and not self.is_expired(now)

    def expire_countdown(self, now: int) -> int:
        """Whole seconds left, or -1: the classic 0.28 API's ``expire`` (spec §6)."""
        if not self.has_expiry:
            return NO_EXPIRY
        return max(0, self.expire_at - now)

    def validate(self) -> None:
        # metadata.name is not checked: the stored name is always computed.
        if not self.metadata.namespace:
            raise ValidationError("metadata.namespace", "must not be empty")
        sub = self.subscription or WILDCARD
        chk = self.check or WILDCARD
        if sub == WILDCARD and chk == WILDCARD:
            raise ValidationError("subscription", "must provide check or subscription", verbatim=True)
        if sub != WILDCARD and not SUBSCRIPTION_RE.match(sub):
            raise ValidationError("subscription", "cannot contain spaces or special characters")
        if chk != WILDCARD and not NAME_RE.match(chk):
            raise ValidationError("check", "cannot contain spaces or special characters")


def silenced_fields(entry: Silenced) -> dict[str, str]:
    """Field-selector values of a silenced entry (spec §1.9)."""
    fields = {
        "silenced.name": entry.metadata.name,
        "silenced.namespace": entry.metadata.namespace,
        "silenced.check": entry.check,
        "silenced.creator": entry.creator,
        "silenced.subscription": entry.subscription,
        "silenced.expire_on_resolve": bool_field(entry.expire_on_resolve),
    }
    for k, v in entry.metadata.labels.items():
        fields[f"silenced.labels.{k}"] = v
    return fields
