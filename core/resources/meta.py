"""ObjectMeta, the name rules of spec §1.6, and the lenient JSON decoding helpers.

Why lenient: the REST API ignores unknown fields and reads ``null`` as empty (spec §1.3),
as Go's ``encoding/json`` does, so clients that send whole objects back (the Ansible
``event`` module sends an entire CheckConfig as an event's check) keep working.

Why strict on types: Go rejects ``"interval":"60"`` and a non-string label with a 400;
we do the same, and name the field (:class:`WireTypeError`).

Decoding rules, in one place so every resource behaves alike:

* ``null`` or a missing key is the zero value: ``""``, ``0``, ``false``; lists stay
  ``None`` (so ``null`` reads back as ``null`` and ``[]`` as ``[]``); maps become ``{}``;
  nested objects decode from ``{}``.
* unknown keys are ignored;
* bools are not ints and ints are not bools; ints are accepted for floats; integral
  floats (``60.0``) are accepted for ints; strings are never numbers;
* integers are range-checked for their Go type (``uint32`` rejects ``-1``);
* lone UTF-16 surrogates (``"\\ud800"`` is valid JSON) become U+FFFD, as Go does, so
  every decoded string can be encoded as UTF-8 (msgpack, logs, responses).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self, TypeVar

from .errors import ValidationError, WireTypeError

__all__ = [
    "ASSET_NAME_RE",
    "NAME_RE",
    "SUBSCRIPTION_RE",
    "USERNAME_RE",
    "IntKind",
    "ObjectMeta",
    "WireReader",
    "check_name",
    "check_optional_name",
    "clean_str",
    "decode_bool",
    "decode_list",
    "decode_meta",
    "decode_float",
    "decode_int",
    "decode_str",
    "decode_str_list",
    "decode_str_map",
    "json_type_name",
    "join_path",
    "list_or_none",
]

T = TypeVar("T")

# Spec §1.6.  Go's \w is ASCII-only; Go's \z is Python's \Z.
NAME_RE: Final = re.compile(r"\A[\w.\-:]+\Z", re.ASCII)
"""Checks, hooks, handlers, filters, mutators, entities, entity_class, namespaces,
pipelines and workflows, proxy_entity_name, silenced ``check``."""

SUBSCRIPTION_RE: Final = re.compile(r"\A[\w.\-]+(:?[\w.\-]+)?\Z", re.ASCII)
"""Roles and bindings (``system:agent``) and silenced ``subscription`` (one ``:`` at most)."""

ASSET_NAME_RE: Final = re.compile(r"\A[\w/_.\-:]+\Z", re.ASCII)
"""Asset names and ``runtime_assets`` entries (``sensu/monitoring-plugins``)."""

USERNAME_RE: Final = re.compile(r"\A[a-z0-9_.\-]+\Z", re.ASCII)
"""Usernames."""

IntKind = Literal["int32", "int64", "uint32", "uint64"]

_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


def clean_str(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD (Go's JSON decoder does the same)."""
    if value.isascii() or _SURROGATE_RE.search(value) is None:
        return value
    return _SURROGATE_RE.sub("\ufffd", value)


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def join_path(path: str, key: str) -> str:
    """``join_path("check", "interval") == "check.interval"``; an empty path gives ``key``."""
    return f"{path}.{key}" if path else key


def _index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def _type_error(path: str, expected: str, value: Any) -> WireTypeError:
    return WireTypeError(path, f"expected {expected}, got {json_type_name(value)}")


def decode_str(value: Any, path: str) -> str:
    """A JSON string; ``null`` is ``""``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(path, "a string", value)
    return clean_str(value)


def decode_bool(value: Any, path: str) -> bool:
    """A JSON boolean; ``null`` is ``false``; numbers are not booleans."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(path, "a boolean", value)
    return value


def decode_int(value: Any, path: str, kind: IntKind = "int64") -> int:
    """A JSON integer that fits Go's ``kind``; ``null`` is ``0``.

    Integral floats (``60.0``) are accepted because some JSON encoders write every
    number that way; ``1.5``, strings and booleans are refused.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _type_error(path, "an integer", value)
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise WireTypeError(path, f"expected an integer, got number {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise _type_error(path, "an integer", value)
    low, high = _INT_RANGES[kind]
    if not low <= value <= high:
        raise WireTypeError(path, f"{value} is out of range for {kind}")
    return value


def decode_float(value: Any, path: str) -> float:
    """A JSON number; ``null`` is ``0.0``; integers are accepted."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise _type_error(path, "a number", value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise WireTypeError(path, "number is out of range") from None
    if not isinstance(value, float):
        raise _type_error(path, "a number", value)
    return value


def decode_list(value: Any, path: str, item: Callable[[Any, str], T]) -> list[T] | None:
    """A JSON array decoded item by item; ``null`` stays ``None`` so it reads back as ``null``."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(path, "an array", value)
    return [item(v, _index_path(path, i)) for i, v in enumerate(value)]


def decode_str_list(value: Any, path: str) -> list[str] | None:
    """A JSON array of strings (``null`` items are refused: Go would refuse them too)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(path, "an array", value)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise _type_error(_index_path(path, i), "a string", v)
    return [clean_str(v) for v in value]


def decode_str_map(value: Any, path: str) -> dict[str, str]:
    """A JSON object of strings (labels, annotations, headers); ``null`` is ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(path, "an object", value)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise WireTypeError(path, "object keys must be strings")
        if not isinstance(v, str):
            raise _type_error(join_path(path, k), "a string", v)
        out[clean_str(k)] = clean_str(v)
    return out


def list_or_none(items: list[T] | None) -> list[T] | None:
    """A copy of a list field, keeping ``None`` (so ``null`` stays ``null`` on the wire)."""
    return None if items is None else list(items)


class WireReader:
    """Reads one JSON object field by field, naming the dotted path in every error.

    ``WireReader(None, "check")`` reads as ``{}``; anything but an object or ``null``
    raises :class:`WireTypeError`.
    """

    __slots__ = ("data", "path")

    data: Mapping[str, Any]
    path: str

    def __init__(self, data: Any, path: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _type_error(path, "an object", data)
        self.data = data
        self.path = path

    def field(self, key: str) -> str:
        """The dotted path of ``key`` inside this object."""
        return join_path(self.path, key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not ``null``."""
        return self.data.get(key) is not None

    def get_raw(self, key: str) -> Any:
        return self.data.get(key)

    # The getters take the common valid case inline and build the dotted path
    # only for the full decoder, which names it in errors: every agent event
    # and API body goes through here field by field.

    def get_str(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if value.__class__ is str and value.isascii():
            return value
        return decode_str(value, self.field(key))

    def get_bool(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if value is True or value is False:
            return value
        return decode_bool(value, self.field(key))

    def get_int(self, key: str, kind: IntKind = "int64") -> int:
        value = self.data.get(key)
        if value is None:
            return 0
        if value.__class__ is int:
            low, high = _INT_RANGES[kind]
            if low <= value <= high:
                return value
        return decode_int(value, self.field(key), kind)

    def get_float(self, key: str) -> float:
        value = self.data.get(key)
        if value.__class__ is float:
            return value
        return decode_float(value, self.field(key))

    def get_str_list(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value.__class__ is list and all(v.__class__ is str and v.isascii() for v in value):
            return list(value)
        return decode_str_list(value, self.field(key))

    def get_str_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if not value:
            if value is None or value.__class__ is dict:
                return {}
        elif value.__class__ is dict and all(
                k.__class__ is str and v.__class__ is str and k.isascii() and v.isascii() for k, v in value.items()):
            return dict(value)
        return decode_str_map(value, self.field(key))

    def get_list(self, key: str, item: Callable[[Any, str], T]) -> list[T] | None:
        value = self.data.get(key)
        if value is None:
            return None
        return decode_list(value, self.field(key), item)

    def get_obj(self, key: str, decode: Callable[[Any, str], T]) -> T:
        """A nested object, decoded from ``{}`` when absent or ``null``."""
        return decode(self.data.get(key), self.field(key))

    def get_optional_obj(self, key: str, decode: Callable[[Any, str], T]) -> T | None:
        """A nested object that stays ``None`` when absent or ``null``."""
        value = self.data.get(key)
        if value is None:
            return None
        return decode(value, self.field(key))


def check_name(value: str, field_path: str, regex: re.Pattern[str] = NAME_RE) -> None:
    """Raise the spec's two name errors (``must not be empty``, ``cannot contain ...``)."""
    if not value:
        raise ValidationError(field_path, "must not be empty")
    if not regex.match(value):
        raise ValidationError(field_path, "cannot contain spaces or special characters")


def check_optional_name(value: str, field_path: str, regex: re.Pattern[str] = NAME_RE) -> None:
    """Like :func:`check_name`, but an empty value is allowed."""
    if value and not regex.match(value):
        raise ValidationError(field_path, "cannot contain spaces or special characters")


@dataclass(slots=True, kw_only=True)
class ObjectMeta:
    """``metadata`` of every core/v2 object except namespaces and users (spec §1.5).

    ``created_by`` is set by the server on every write; clients cannot choose it.
    """

    name: str = ""
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    created_by: str = ""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "metadata") -> Self:
        r = WireReader(data, path)
        return cls(
            name=r.get_str("name"),
            namespace=r.get_str("namespace"),
            labels=r.get_str_map("labels"),
            annotations=r.get_str_map("annotations"),
            created_by=r.get_str("created_by"),
        )

    def to_wire(self) -> dict[str, Any]:
        """Every key is omitted when empty, including empty maps (spec §1.5)."""
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.namespace:
            out["namespace"] = self.namespace
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.created_by:
            out["created_by"] = self.created_by
        return out

    def validate(self, *, namespaced: bool, regex: re.Pattern[str] = NAME_RE) -> None:
        """Name rules, plus the namespace rule of namespaced types."""
        check_name(self.name, "metadata.name", regex)
        if namespaced and not self.namespace:
            raise ValidationError("metadata.namespace", "must not be empty")

    def copy(self) -> ObjectMeta:
        return ObjectMeta(
            name=self.name,
            namespace=self.namespace,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            created_by=self.created_by,
        )


def decode_meta(value: Any, path: str) -> ObjectMeta:
    """Decoder for :meth:`WireReader.get_obj`."""
    return ObjectMeta.from_wire(value, path=path)
