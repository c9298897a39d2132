"""Errors raised while decoding and validating core/v2 resources.

Exception tree::

    Exception
     └── ValidationError          a value breaks a rule of spec §2 (HTTP 400)
          └── WireTypeError       a JSON value has the wrong type or range (HTTP 400)

Both carry ``field`` (a dotted path such as ``check.proxy_requests.splay_coverage`` or
``subscriptions[2]``) and ``reason``, the text the API layer puts after
``resource is invalid: ``.  ``str(err) == err.reason``.

Why only these two: the API answers every client mistake with a 400 and never a 500, so
``from_wire`` and ``validate`` promise to raise nothing else, whatever JSON they are fed
(a hypothesis test holds them to it).
"""

from __future__ import annotations

from typing import Self

__all__ = ["ValidationError", "WireTypeError"]


class ValidationError(Exception):
    """A resource breaks one of the rules of spec §2.

    ``reason`` names the field first (``interval: must be greater than 0 when cron is
    not set``) unless ``verbatim`` is set: some reasons are quoted word for word by the
    spec (``must provide check or subscription``, ``empty handler type``) and clients
    or tests may compare them exactly.
    """

    field: str
    message: str
    verbatim: bool
    reason: str

    def __init__(self, field: str, message: str, *, verbatim: bool = False) -> None:
        self.field = field
        self.message = message
        self.verbatim = verbatim
        self.reason = message if verbatim or not field else f"{field}: {message}"
        super().__init__(self.reason)

    def nested(self, prefix: str) -> Self:
        """The same error seen from an enclosing object.

        An event's check reports ``check.interval: ...`` rather than ``interval: ...``,
        so the user can tell which of the event's parts is wrong.
        """
        field = f"{prefix}.{self.field}" if self.field else prefix
        if self.verbatim:
            err = type(self)(field, f"{prefix}: {self.message}", verbatim=True)
            err.message = self.message
            return err
        return type(self)(field, self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.field!r}, {self.message!r})"


class WireTypeError(ValidationError):
    """A JSON value has the wrong type (``"interval":"60"``) or is out of range.

    Go's decoder rejects these before validation; we do the same, as a 400 that names
    the field, e.g. ``interval: expected an integer, got string``.
    """
