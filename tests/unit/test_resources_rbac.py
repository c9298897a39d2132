"""Roles and bindings: spec §2.13 (comma splitting, title-casing, exact keys)."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import ClusterRole, ClusterRoleBinding, Role, RoleBinding, ValidationError
from core.resources.rbac import Rule, binding_fields, go_title, role_fields

ROLE: dict[str, Any] = {
    "rules": [{"verbs": ["get", "list"], "resources": ["checks"], "resource_names": None}],
    "metadata": {"name": "viewer", "namespace": "default"},
}
CLUSTER_ROLE: dict[str, Any] = {
    "rules": [{"verbs": ["*"], "resources": ["*"], "resource_names": ["a"]}],
    "metadata": {"name": "system:admin"},
}
BINDING: dict[str, Any] = {
    "subjects": [{"type": "User", "name": "alice"}, {"type": "Group", "name": "ops"}],
    "role_ref": {"type": "Role", "name": "viewer"},
    "metadata": {"name": "viewer-binding", "namespace": "default"},
}
CLUSTER_BINDING: dict[str, Any] = {
    "subjects": [{"type": "Group", "name": "cluster-admins"}],
    "role_ref": {"type": "ClusterRole", "name": "cluster-admin"},
    "metadata": {"name": "cluster-admin"},
}


def reason(obj: Any) -> str:
    with pytest.raises(ValidationError) as info:
        obj.validate()
    return str(info.value.reason)


@pytest.mark.parametrize(
    ("cls", "wire"),
    [(Role, ROLE), (ClusterRole, CLUSTER_ROLE), (RoleBinding, BINDING), (ClusterRoleBinding, CLUSTER_BINDING)],
)
def test_round_trip(cls: Any, wire: dict[str, Any]) -> None:
    obj = cls.from_wire(wire)
    obj.validate()
    assert obj.to_wire() == wire
    assert cls.from_store(obj.to_store()) == obj


def test_commas_are_split_and_stored_split() -> None:
    role = Role.from_wire({**ROLE, "rules": [{"verbs": ["get,list", "create"], "resources": ["checks,hooks"]}]})
    role.validate()
    assert role.to_wire()["rules"] == [
        {"verbs": ["get", "list", "create"], "resources": ["checks", "hooks"], "resource_names": None}
    ]


def test_resource_names_null_and_empty_kept() -> None:
    role = Role.from_wire({**ROLE, "rules": [{"verbs": ["get"], "resources": ["checks"], "resource_names": []}]})
    assert role.to_wire()["rules"][0]["resource_names"] == []


def test_types_are_title_cased() -> None:
    b = RoleBinding.from_wire({**BINDING, "subjects": [{"type": "user", "name": "a"}],
                               "role_ref": {"type": "clusterRole", "name": "r"}})
    b.validate()
    assert b.to_wire()["subjects"] == [{"type": "User", "name": "a"}]
    assert b.to_wire()["role_ref"] == {"type": "ClusterRole", "name": "r"}


def test_go_title() -> None:
    assert go_title("user") == "User"
    assert go_title("cluster role") == "Cluster Role"
    assert go_title("USER") == "USER"
    assert go_title("") == ""


def test_role_name_regex_allows_one_colon() -> None:
    assert reason(Role.from_wire({**ROLE, "metadata": {"name": "a:b:c", "namespace": "default"}})) == (
        "metadata.name: cannot contain spaces or special characters"
    )


def test_role_needs_namespace() -> None:
    assert reason(Role.from_wire({**ROLE, "metadata": {"name": "r"}})) == "metadata.namespace: must not be empty"


def test_cluster_role_cannot_have_namespace() -> None:
    assert reason(ClusterRole.from_wire({**CLUSTER_ROLE, "metadata": {"name": "r", "namespace": "d"}})) == (
        "ClusterRole cannot have a namespace"
    )


def test_cluster_role_binding_cannot_have_namespace() -> None:
    wire = {**CLUSTER_BINDING, "metadata": {"name": "b", "namespace": "d"}}
    assert reason(ClusterRoleBinding.from_wire(wire)) == "ClusterRoleBinding cannot have a namespace"


def test_at_least_one_rule() -> None:
    assert reason(Role.from_wire({**ROLE, "rules": []})) == "rules: must contain at least one rule"
    assert reason(ClusterRole.from_wire({**CLUSTER_ROLE, "rules": None})) == "rules: must contain at least one rule"


def test_verbs() -> None:
    assert reason(Role.from_wire({**ROLE, "rules": [{"verbs": ["get", "patch"], "resources": ["x"]}]})).startswith(
        "rules[0].verbs[1]: invalid verb 'patch'"
    )
    for verb in ("*", "get", "list", "create", "update", "delete"):
        Role.from_wire({**ROLE, "rules": [{"verbs": [verb], "resources": ["checks"]}]}).validate()


def test_role_ref_type() -> None:
    assert reason(RoleBinding.from_wire({**BINDING, "role_ref": {"type": "Admin", "name": "x"}})) == (
        "role_ref.type: must be \"Role\" or \"ClusterRole\", got 'Admin'"
    )


def test_role_ref_name() -> None:
    assert reason(RoleBinding.from_wire({**BINDING, "role_ref": {"type": "Role"}})) == (
        "role_ref.name: must not be empty"
    )


def test_at_least_one_subject() -> None:
    assert reason(RoleBinding.from_wire({**BINDING, "subjects": []})) == "subjects: must contain at least one subject"


def test_subject_type_and_name() -> None:
    assert reason(RoleBinding.from_wire({**BINDING, "subjects": [{"type": "robot", "name": "r"}]})) == (
        "subjects[0].type: must be \"User\" or \"Group\", got 'Robot'"
    )
    assert reason(RoleBinding.from_wire({**BINDING, "subjects": [{"type": "Group"}]})) == (
        "subjects[0].name: must not be empty"
    )


def test_extra_keys_are_not_emitted() -> None:
    b = RoleBinding.from_wire({**BINDING, "role_ref": {"type": "Role", "name": "viewer", "api_version": "x"},
                               "subjects": [{"type": "User", "name": "alice", "kind": "x"}]})
    assert b.to_wire()["role_ref"] == {"type": "Role", "name": "viewer"}
    assert b.to_wire()["subjects"] == [{"type": "User", "name": "alice"}]


def test_rule_matching() -> None:
    rule = Rule(verbs=["get"], resources=["checks"], resource_names=None)
    assert rule.matches("get", "checks", "anything")
    assert not rule.matches("delete", "checks", "x")
    assert Rule(verbs=["*"], resources=["*"], resource_names=["a"]).matches("delete", "hooks", "a")
    assert not Rule(verbs=["*"], resources=["*"], resource_names=["a"]).matches("delete", "hooks", "b")


def test_fields() -> None:
    assert role_fields("role", Role.from_wire(ROLE)) == {"role.name": "viewer", "role.namespace": "default"}
    assert role_fields("clusterrole", ClusterRole.from_wire(CLUSTER_ROLE)) == {"clusterrole.name": "system:admin"}
    assert binding_fields("rolebinding", RoleBinding.from_wire(BINDING)) == {
        "rolebinding.name": "viewer-binding", "rolebinding.namespace": "default",
        "rolebinding.role_ref.name": "viewer", "rolebinding.role_ref.type": "Role",
    }
    assert binding_fields("clusterrolebinding", ClusterRoleBinding.from_wire(CLUSTER_BINDING)) == {
        "clusterrolebinding.name": "cluster-admin", "clusterrolebinding.role_ref.name": "cluster-admin",
        "clusterrolebinding.role_ref.type": "ClusterRole",
    }
