"""RBAC resources (spec §2.13): Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Two normalisations happen while decoding, as Go does them before storing: verb and
resource entries containing commas are split (``"get,list"`` becomes two entries), and
``role_ref.type``/``subjects[].type`` are title-cased (``user`` becomes ``User``).  The
Ansible modules compare ``role_ref`` and each subject by dict equality, so those emit
exactly ``{"type","name"}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .errors import ValidationError
from .meta import SUBSCRIPTION_RE, ObjectMeta, WireReader, decode_meta, list_or_none

__all__ = [
    "COMMON_CORE_RESOURCES",
    "RBAC_RESOURCES",
    "VERBS",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "RoleRef",
    "Rule",
    "Subject",
    "binding_fields",
    "go_title",
    "role_fields",
]

VERBS: Final = frozenset({"*", "get", "list", "create", "update", "delete", "execute"})
"""Accepted rule verbs.  ``execute`` is not in the spec's list but Go accepts it."""

COMMON_CORE_RESOURCES: Final = (
    "assets", "checks", "entities", "events", "filters", "handlers", "hooks", "mutators", "silenced",
)
RBAC_RESOURCES: Final = COMMON_CORE_RESOURCES + (
    "namespaces", "users", "roles", "rolebindings", "clusterroles", "clusterrolebindings", "apikeys",
    "pipelines", "localselfuser", "*",
)
"""Resource names a rule may use (informational: Go does not reject others)."""

ROLE_REF_TYPES: Final = ("Role", "ClusterRole")
SUBJECT_TYPES: Final = ("User", "Group")


def _is_title_separator(ch: str) -> bool:
    """Go's ``strings.Title`` word boundary rule."""
    if ord(ch) <= 0x7F:
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def go_title(text: str) -> str:
    """Go's ``strings.Title``: upper-case the first letter of each word, leave the rest."""
    out: list[str] = []
    prev = " "
    for ch in text:
        out.append(ch.upper() if _is_title_separator(prev) and len(ch.upper()) == 1 else ch)
        prev = ch
    return "".join(out)


def _split_commas(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(v.split(","))
    return out


@dataclass(slots=True, kw_only=True)
class Rule:
    """``{"verbs","resources","resource_names"}``; ``resource_names`` ``null`` means all names."""

    verbs: list[str] | None = None
    resources: list[str] | None = None
    resource_names: list[str] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            verbs=_split_commas(r.get_str_list("verbs")),
            resources=_split_commas(r.get_str_list("resources")),
            resource_names=r.get_str_list("resource_names"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "verbs": list_or_none(self.verbs),
            "resources": list_or_none(self.resources),
            "resource_names": list_or_none(self.resource_names),
        }

    def validate(self, path: str) -> None:
        for i, verb in enumerate(self.verbs or ()):
            if verb not in VERBS:
                raise ValidationError(
                    f"{path}.verbs[{i}]", f"invalid verb {verb!r}: must be one of *, get, list, create, update, delete, execute"
                )

    def verb_matches(self, verb: str) -> bool:
        return any(v in ("*", verb) for v in self.verbs or ())

    def resource_matches(self, resource: str) -> bool:
        return any(r in ("*", resource) for r in self.resources or ())

    def resource_name_matches(self, name: str) -> bool:
        """An empty ``resource_names`` matches every name."""
        return not self.resource_names or name in self.resource_names

    def matches(self, verb: str, resource: str, name: str) -> bool:
        return self.verb_matches(verb) and self.resource_matches(resource) and self.resource_name_matches(name)


def _decode_rules(r: WireReader) -> list[Rule] | None:
    return r.get_list("rules", Rule.from_wire)


def _rules_to_wire(rules: list[Rule] | None) -> list[dict[str, Any]] | None:
    return None if rules is None else [rule.to_wire() for rule in rules]


def _validate_rules(rules: list[Rule] | None) -> None:
    if not rules:
        raise ValidationError("rules", "must contain at least one rule")
    for i, rule in enumerate(rules):
        rule.validate(f"rules[{i}]")


@dataclass(slots=True, kw_only=True)
class _Rules:
    """What a Role and a ClusterRole share: everything but where they apply."""

    KIND: ClassVar[str]
    NAMESPACED: ClassVar[bool]

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    rules: list[Rule] | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(metadata=r.get_obj("metadata", decode_meta), rules=_decode_rules(r))

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {"rules": _rules_to_wire(self.rules), "metadata": self.metadata.to_wire()}

    def validate(self) -> None:
        _validate_scope(self.metadata, self.KIND, self.NAMESPACED)
        _validate_rules(self.rules)


def _validate_scope(metadata: ObjectMeta, kind: str, namespaced: bool) -> None:
    metadata.validate(namespaced=namespaced, regex=SUBSCRIPTION_RE)
    if not namespaced and metadata.namespace:
        raise ValidationError("metadata.namespace", f"{kind} cannot have a namespace", verbatim=True)


@dataclass(slots=True, kw_only=True)
class Role(_Rules):
    """Rules that apply inside one namespace."""

    KIND: ClassVar[str] = "Role"
    NAMESPACED: ClassVar[bool] = True


@dataclass(slots=True, kw_only=True)
class ClusterRole(_Rules):
    """Rules that apply in every namespace (and to cluster-wide resources)."""

    KIND: ClassVar[str] = "ClusterRole"
    NAMESPACED: ClassVar[bool] = False


@dataclass(slots=True, kw_only=True)
class RoleRef:
    """``{"type","name"}``: the Role or ClusterRole a binding grants."""

    type: str = ""
    name: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(type=go_title(r.get_str("type")), name=r.get_str("name"))

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name}

    def validate(self, path: str) -> None:
        if self.type not in ROLE_REF_TYPES:
            raise ValidationError(f"{path}.type", f'must be "Role" or "ClusterRole", got {self.type!r}')
        if not self.name:
            raise ValidationError(f"{path}.name", "must not be empty")


@dataclass(slots=True, kw_only=True)
class Subject:
    """``{"type","name"}``: a ``User`` or a ``Group``."""

    type: str = ""
    name: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(type=go_title(r.get_str("type")), name=r.get_str("name"))

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name}

    def validate(self, path: str) -> None:
        if self.type not in SUBJECT_TYPES:
            raise ValidationError(f"{path}.type", f'must be "User" or "Group", got {self.type!r}')
        if not self.name:
            raise ValidationError(f"{path}.name", "must not be empty")


@dataclass(slots=True, kw_only=True)
class _Binding:
    """What a RoleBinding and a ClusterRoleBinding share: everything but where they apply."""

    KIND: ClassVar[str]
    NAMESPACED: ClassVar[bool]

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    subjects: list[Subject] | None = None
    role_ref: RoleRef = field(default_factory=RoleRef)

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            subjects=r.get_list("subjects", Subject.from_wire),
            role_ref=r.get_obj("role_ref", RoleRef.from_wire),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {
            "subjects": None if self.subjects is None else [s.to_wire() for s in self.subjects],
            "role_ref": self.role_ref.to_wire(),
            "metadata": self.metadata.to_wire(),
        }

    def validate(self) -> None:
        _validate_scope(self.metadata, self.KIND, self.NAMESPACED)
        self.role_ref.validate("role_ref")
        if not self.subjects:
            raise ValidationError("subjects", "must contain at least one subject")
        for i, subject in enumerate(self.subjects):
            subject.validate(f"subjects[{i}]")


@dataclass(slots=True, kw_only=True)
class RoleBinding(_Binding):
    """Grants a Role or ClusterRole to subjects, inside one namespace."""

    KIND: ClassVar[str] = "RoleBinding"
    NAMESPACED: ClassVar[bool] = True


@dataclass(slots=True, kw_only=True)
class ClusterRoleBinding(_Binding):
    """Grants a ClusterRole to subjects, everywhere."""

    KIND: ClassVar[str] = "ClusterRoleBinding"
    NAMESPACED: ClassVar[bool] = False


def role_fields(prefix: str, role: Role | ClusterRole) -> dict[str, str]:
    """Field-selector values of a role or cluster role (``prefix`` is ``role``/``clusterrole``)."""
    fields = {f"{prefix}.name": role.metadata.name}
    if isinstance(role, Role):
        fields[f"{prefix}.namespace"] = role.metadata.namespace
    for k, v in role.metadata.labels.items():
        fields[f"{prefix}.labels.{k}"] = v
    return fields


def binding_fields(prefix: str, binding: RoleBinding | ClusterRoleBinding) -> dict[str, str]:
    """Field-selector values of a (cluster) role binding, incl. ``role_ref.{name,type}``."""
    fields = {
        f"{prefix}.name": binding.metadata.name,
        f"{prefix}.role_ref.name": binding.role_ref.name,
        f"{prefix}.role_ref.type": binding.role_ref.type,
    }
    if isinstance(binding, RoleBinding):
        fields[f"{prefix}.namespace"] = binding.metadata.namespace
    for k, v in binding.metadata.labels.items():
        fields[f"{prefix}.labels.{k}"] = v
    return fields
