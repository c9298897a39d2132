"""An OpenAPI 3.0 document generated from the live route table and the resource registry.

Why generated: a hand-written document drifts from the code, and a fuzzer fed a
stale document tests the wrong API. Here every path and method comes from
:class:`api.router.Router` as it is at request time (the document is built
lazily, so routes registered by any family, in any order, are included), and
every resource schema comes from the dataclasses in
:data:`core.resources.RESOURCES` (field names are the wire names; the
"always present" keys of a GET are what ``to_wire()`` emits for an empty
object, so those are the ``required`` keys of the response schemas).

What it knows beyond the table: the success status and body of routes whose
answers are not the generic CRUD ones of api.md §1.2 (auth, users
sub-routes, API keys, cluster, classic silencing), kept in :data:`_OVERRIDES`.
Everything else gets the §1.2 defaults, and every operation also has a
``default`` response (the ``{"message","code"}`` error or a plain-text one),
so any documented error status is valid against the document.

``GET /api/core/v2/openapi.json`` is **public**: the document describes the
public Sensu API surface and holds no data, and a fuzzer needs it before it
has credentials. Authentication requirements are stated per operation
(``security``): public routes have none, ``/api/*`` routes take a Bearer
token or ``Authorization: Key <key>``, the classic ``/silenced`` routes and
``/auth`` also take HTTP Basic.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Final, Union

from quart import Response

from core.resources import RESOURCES
from core.version import SENSU_COMPAT_VERSION

from .errors import json_body
from .router import Route, Router

__all__ = ["build_document", "register", "OPENAPI_PATH", "route_path", "documented_operations",
           "routed_operations"]

OPENAPI_PATH: Final = "/api/core/v2/openapi.json"

#: Path parameters that stand for a collection name in generic routes.
_COLLECTION_PARAMS: Final = frozenset({"resource", "resources", "collection", "kind", "resource_type"})

#: Input-only fields, never in a response (api.md §2.12).
_WRITE_ONLY: Final[dict[str, frozenset[str]]] = {"users": frozenset({"password", "password_hash"})}

_ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}

_EXTRA_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Error": {
        "type": "object",
        "required": ["message", "code"],
        "properties": {"message": {"type": "string"}, "code": {"type": "integer"}},
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "expires_at", "refresh_token"],
        "properties": {"access_token": {"type": "string"}, "expires_at": {"type": "integer"},
                       "refresh_token": {"type": "string"}},
    },
    "RefreshRequest": {"type": "object", "properties": {"refresh_token": {"type": "string"}}},
    "PasswordChange": {
        "type": "object",
        "required": ["password", "password_hash"],
        "properties": {"password": {"type": "string", "description": "the current password"},
                       "password_hash": {"type": "string", "description": "the new bcrypt hash"}},
    },
    "PasswordReset": {
        "type": "object",
        "required": ["password_hash"],
        "properties": {"username": {"type": "string"}, "password_hash": {"type": "string"}},
    },
    "APIKeyRequest": {"type": "object", "required": ["username"], "properties": {"username": {"type": "string"}}},
    "ClusterMember": {
        "type": "object",
        "required": ["ID", "peerURLs"],
        "properties": {"ID": {"type": "integer", "format": "uint64"}, "name": {"type": "string"},
                       "peerURLs": {"type": "array", "items": {"type": "string"}},
                       "clientURLs": {"type": "array", "items": {"type": "string"}},
                       "isLearner": {"type": "boolean"}},
    },
    "ClusterHeader": {
        "type": "object",
        "properties": {"cluster_id": {"type": "integer"}, "member_id": {"type": "integer"},
                       "raft_term": {"type": "integer"}},
    },
    "ClusterMemberList": {
        "type": "object",
        "required": ["header", "members"],
        "properties": {"header": {"$ref": "#/components/schemas/ClusterHeader"},
                       "member": {"$ref": "#/components/schemas/ClusterMember"},
                       "members": {"type": "array", "items": {"$ref": "#/components/schemas/ClusterMember"}}},
    },
    "ClassicSilenced": {
        "type": "object",
        "required": ["expire", "expire_on_resolve", "creator", "reason", "check", "subscription", "id"],
        "properties": {
            "expire": {"type": "integer", "description": "seconds left, or -1"},
            "expire_on_resolve": {"type": "boolean"},
            "creator": {"type": "string", "nullable": True},
            "reason": {"type": "string", "nullable": True},
            "check": {"type": "string", "nullable": True},
            "subscription": {"type": "string", "nullable": True},
            "id": {"type": "string"},
        },
    },
    "ClassicSilencedInput": {
        "type": "object",
        "description": "subscription or check (or both) is required",
        "properties": {
            "subscription": {"type": "string", "nullable": True, "pattern": r"^[\w.\-:]+$"},
            "check": {"type": "string", "nullable": True, "pattern": r"^[\w.\-]+$"},
            "expire": {"type": "integer", "nullable": True},
            "expire_on_resolve": {"type": "boolean", "nullable": True},
            "creator": {"type": "string", "nullable": True},
            "reason": {"type": "string", "nullable": True},
            "begin": {"type": "integer", "nullable": True},
        },
    },
    "ClassicClear": {
        "type": "object",
        "properties": {"id": {"type": "string", "nullable": True},
                       "subscription": {"type": "string", "nullable": True},
                       "check": {"type": "string", "nullable": True}},
    },
    "InitRequest": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                       "api_key": {"type": "string"}},
    },
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


_JSON: Final = "application/json"
_TEXT: Final = "text/plain"


@dataclasses.dataclass(frozen=True)
class _Answer:
    """What one operation answers on success: status, media type and schema (None = empty body)."""

    status: int
    schema: dict[str, Any] | None = None
    media: str = _JSON


@dataclasses.dataclass(frozen=True)
class _Override:
    answers: tuple[_Answer, ...]
    body: dict[str, Any] | None = None
    body_required: bool = True
    error_media: str = _JSON


_OVERRIDES: Final[dict[tuple[str, str], _Override]] = {
    ("GET", "/health"): _Override((_Answer(200, {"type": "object"}), _Answer(503, {"type": "object"}))),
    ("GET", "/version"): _Override((_Answer(200, {"type": "object", "required": ["sensu_backend"]}),)),
    ("GET", "/ready"): _Override((_Answer(200, {"type": "string"}, _TEXT),)),
    ("GET", "/metrics"): _Override((_Answer(200, {"type": "string"}, _TEXT),)),
    ("GET", "/auth"): _Override((_Answer(200, _ref("TokenPair")),), error_media=_TEXT),
    ("GET", "/auth/test"): _Override((_Answer(200),), error_media=_TEXT),
    ("POST", "/auth/token"): _Override((_Answer(200, _ref("TokenPair")),), _ref("RefreshRequest"),
                                       error_media=_TEXT),
    ("POST", "/auth/logout"): _Override((_Answer(200),), _ref("RefreshRequest"), False, error_media=_TEXT),
    ("POST", "/init"): _Override((_Answer(200, {"type": "object"}), _Answer(201, {"type": "object"})),
                                 _ref("InitRequest")),
    ("POST", "/api/core/v2/users"): _Override((_Answer(201),), _ref("UserInput")),
    ("PUT", "/api/core/v2/users/{name}"): _Override((_Answer(201),), _ref("UserInput")),
    ("DELETE", "/api/core/v2/users/{name}"): _Override((_Answer(204),)),
    ("PUT", "/api/core/v2/users/{name}/reinstate"): _Override((_Answer(201),), None, False),
    ("PUT", "/api/core/v2/users/{name}/groups/{group}"): _Override((_Answer(201),), None, False),
    ("DELETE", "/api/core/v2/users/{name}/groups/{group}"): _Override((_Answer(204),)),
    ("DELETE", "/api/core/v2/users/{name}/groups"): _Override((_Answer(204),)),
    ("PUT", "/api/core/v2/users/{name}/password"): _Override((_Answer(201),), _ref("PasswordChange")),
    ("PUT", "/api/core/v2/users/{name}/reset_password"): _Override((_Answer(201),), _ref("PasswordReset")),
    ("POST", "/api/core/v2/apikeys"): _Override((_Answer(201),), _ref("APIKeyRequest"), error_media=_TEXT),
    ("GET", "/api/core/v2/cluster/members"): _Override((_Answer(200, _ref("ClusterMemberList")),),
                                                       error_media=_TEXT),
    ("POST", "/api/core/v2/cluster/members"): _Override((_Answer(200, _ref("ClusterMemberList")),), None, False,
                                                        error_media=_TEXT),
    ("PUT", "/api/core/v2/cluster/members/{hexid}"): _Override((_Answer(200, _ref("ClusterMemberList")),), None,
                                                               False, error_media=_TEXT),
    ("DELETE", "/api/core/v2/cluster/members/{hexid}"): _Override((_Answer(200, _ref("ClusterMemberList")),),
                                                                  error_media=_TEXT),
    ("GET", "/api/core/v2/cluster/id"): _Override((_Answer(200, {"type": "string"}),), error_media=_TEXT),
    ("GET", "/silenced"): _Override((_Answer(200, _array(_ref("ClassicSilenced"))),), error_media=_TEXT),
    ("POST", "/silenced"): _Override((_Answer(201),), _ref("ClassicSilencedInput"), error_media=_TEXT),
    ("POST", "/silenced/clear"): _Override((_Answer(204),), _ref("ClassicClear"), error_media=_TEXT),
    ("GET", "/silenced/subscriptions/{subscription}"): _Override((_Answer(200, _array(_ref("ClassicSilenced"))),),
                                                                  error_media=_TEXT),
    ("GET", "/silenced/checks/{check}"): _Override((_Answer(200, _array(_ref("ClassicSilenced"))),),
                                                    error_media=_TEXT),
    ("GET", "/silenced/ids/{id}"): _Override((_Answer(200, _ref("ClassicSilenced")),), error_media=_TEXT),
    ("GET", OPENAPI_PATH): _Override((_Answer(200, _ref("OpenAPI")),)),
}

_BASIC_ROUTES: Final = frozenset({"/auth", "/auth/test", "/silenced", "/silenced/clear",
                                  "/silenced/subscriptions/{subscription}", "/silenced/checks/{check}",
                                  "/silenced/ids/{id}"})


# ---------------------------------------------------------------------- schemas from dataclasses


class _Schemas:
    """Component schemas built on demand from the resource dataclasses (names kept unique)."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _EXTRA_SCHEMAS.items()}
        self._names: dict[type, str] = {}

    def _name_for(self, cls: type) -> str:
        if cls in self._names:
            return self._names[cls]
        name = cls.__name__
        if name in self.components:
            name = f"{cls.__module__.rsplit('.', 1)[-1].title()}{cls.__name__}"
        self._names[cls] = name
        return name

    def of_type(self, tp: Any) -> dict[str, Any]:
        """The schema of one annotated field type."""
        if tp is Any or tp is object:
            return {}
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is bytes:
            return {"type": "string", "format": "byte"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            schema = self.of_type(rest[0]) if len(rest) == 1 else {"anyOf": [self.of_type(a) for a in rest]}
            if len(rest) < len(args):
                schema = ({"allOf": [schema], "nullable": True} if "$ref" in schema
                          else {**schema, "nullable": True})
            return schema
        if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
            return _array(self.of_type(args[0]) if args else {})
        if origin is dict or tp is dict:
            return {"type": "object", "additionalProperties": self.of_type(args[1]) if len(args) == 2 else {}}
        if origin is typing.Literal:
            values = list(args)
            kind = ("string" if all(isinstance(v, str) for v in values)
                    else "integer" if all(isinstance(v, int) for v in values) else None)
            return {"enum": values, **({"type": kind} if kind else {})}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return _ref(self.dataclass(tp))
        return {}

    def dataclass(self, cls: type, *, exclude: frozenset[str] = frozenset(), required: list[str] | None = None,
                  name: str | None = None) -> str:
        """Register ``cls`` (and what it nests) as a component; returns its name."""
        name = name or self._name_for(cls)
        if name in self.components:
            return name
        self.components[name] = {}  # placeholder: recursive types terminate
        hints = typing.get_type_hints(cls)
        props = {f.name: self.of_type(hints.get(f.name, Any)) for f in dataclasses.fields(cls)
                 if f.name not in exclude and not f.name.startswith("_")}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if required is None:
            required = _always_present(cls)
        required = [k for k in required if k in props]
        if required:
            schema["required"] = required
        doc = (cls.__doc__ or "").strip().split("\n\n", 1)[0]
        if doc:
            schema["description"] = " ".join(doc.split())
        self.components[name] = schema
        return name


def _always_present(cls: type) -> list[str]:
    """Keys ``to_wire()`` emits for an empty object: the keys a GET always carries."""
    to_wire = getattr(cls, "to_wire", None)
    if to_wire is None:
        return []
    try:
        wire = cls().to_wire()
    except Exception:  # nested value types whose to_wire needs arguments
        return []
    return list(wire) if isinstance(wire, dict) else []


def _resource_schemas(schemas: _Schemas) -> dict[str, tuple[str, str]]:
    """collection → (response schema name, request schema name)."""
    out: dict[str, tuple[str, str]] = {}
    for rtype in RESOURCES.values():  # nested references to a resource class use its Kind name
        schemas._names[rtype.cls] = rtype.kind
    for collection, rtype in sorted(RESOURCES.items()):
        cls = rtype.cls
        kind = rtype.kind
        write_only = _WRITE_ONLY.get(collection, frozenset())
        response = schemas.dataclass(cls, exclude=write_only, name=kind)
        if collection == "users":
            required = ["username"]
        elif collection == "namespaces":
            required = ["name"]
        else:
            required = ["metadata"]
        request = schemas.dataclass(cls, required=required, name=f"{kind}Input")
        out[collection] = (response, request)
    return out


# ---------------------------------------------------------------------- paths from the router


def route_path(route: Route) -> str:
    """The OpenAPI path of a route pattern (``{name}`` placeholders are kept as they are)."""
    return "/" + "/".join(route.pattern)


def routed_operations(router: Router) -> set[tuple[str, str]]:
    """Every (METHOD, path) the router serves (HEAD is implied by GET and not listed)."""
    return {(method.upper(), route_path(r)) for r in router.routes for method in r.methods}


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method != "parameters"}


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _resource_of(pattern: tuple[str, ...]) -> tuple[str | None, str]:
    """(collection, shape) of a route: shape is ``list``, ``item`` or ``other``.

    The collection is the last literal segment that names one; what follows it
    decides the shape (events take one or two names: entity, then check).
    """
    for i in range(len(pattern) - 1, -1, -1):
        seg = pattern[i]
        if _is_param(seg) or seg not in RESOURCES:
            continue
        tail = pattern[i + 1:]
        if not tail:
            return seg, "list"
        if all(_is_param(s) for s in tail):
            if seg == "events":
                return seg, "item" if len(tail) == 2 else "list" if len(tail) == 1 else "other"
            return (seg, "item") if len(tail) == 1 else (None, "other")
        if len(tail) == 2 and tail[0] in ("subscriptions", "checks") and _is_param(tail[1]):
            return seg, "list"
        return None, "other"
    return None, "other"


_DEFAULT_STATUS: Final = {"GET": 200, "HEAD": 200, "POST": 201, "PUT": 201, "PATCH": 200, "DELETE": 204}


def _content(schema: dict[str, Any] | None, media: str) -> dict[str, Any]:
    return {media: {"schema": schema if schema is not None else {}}}


def _operation(method: str, path: str, route: Route, handler: Any, resources: dict[str, tuple[str, str]],
               op_ids: set[str]) -> dict[str, Any]:
    collection, shape = _resource_of(route.pattern)
    override = _OVERRIDES.get((method, path))
    module = getattr(handler, "__module__", "") or ""
    tag = module.rsplit(".", 1)[-1] if module else "api"
    name = getattr(handler, "__name__", "handler")
    op_id = name if name not in op_ids else f"{method.lower()}_{name}"
    n = 2
    while op_id in op_ids:
        op_id = f"{method.lower()}_{name}_{n}"
        n += 1
    op_ids.add(op_id)
    doc = (getattr(handler, "__doc__", None) or "").strip().split("\n", 1)[0]
    op: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": doc or f"{method} {path}"}

    response_schema: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    body_required = method in ("POST", "PUT", "PATCH")
    answers: tuple[_Answer, ...]
    error_media = _JSON
    if collection is not None:
        response_name, request_name = resources[collection]
        if method in ("GET", "HEAD"):
            response_schema = _array(_ref(response_name)) if shape == "list" else _ref(response_name)
        elif method == "PATCH":
            response_schema = _ref(response_name)
            body = {"type": "object", "description": "RFC 7396 merge patch"}
        elif method in ("POST", "PUT") and shape in ("list", "item"):
            body = _ref(request_name)
    if override is not None:
        answers = override.answers
        if override.body is not None or not override.body_required:
            body = override.body
        body_required = override.body_required and body is not None
        error_media = override.error_media
    else:
        status = _DEFAULT_STATUS.get(method, 200)
        with_body = method in ("GET", "HEAD", "PATCH")
        answers = (_Answer(status, response_schema if with_body else None),)
        if method == "PUT":  # entities, tessen and friends answer 200 with the object
            answers += (_Answer(200, {"type": "object"}),)
        if method == "POST":
            answers += (_Answer(200, {"type": "object"}),)
    responses: dict[str, Any] = {}
    for answer in answers:
        entry: dict[str, Any] = {"description": "success" if answer.status < 400 else "unavailable"}
        if answer.schema is not None:
            entry["content"] = _content(answer.schema, answer.media)
        responses[str(answer.status)] = entry
    responses["default"] = {
        "description": "an error: JSON {message, code} on /api routes, plain text on /auth*, apikey POST, "
                       "cluster routes and the classic /silenced routes",
        "content": {_JSON: {"schema": _ERROR_REF}, _TEXT: {"schema": {"type": "string"}}}
        if error_media == _JSON else {_TEXT: {"schema": {"type": "string"}}, _JSON: {"schema": _ERROR_REF}},
    }
    op["responses"] = responses
    if body is not None:
        media = "application/merge-patch+json" if method == "PATCH" else _JSON
        op["requestBody"] = {"required": body_required, "content": {media: {"schema": body}}}
    if route.public and path not in _BASIC_ROUTES:
        op["security"] = []
    elif path in _BASIC_ROUTES:
        op["security"] = [{"basicAuth": []}, {"bearerAuth": []}, {"apiKeyAuth": []}] if path.startswith(
            "/silenced") else [{"basicAuth": []}]
    params: list[dict[str, Any]] = []
    if method in ("GET", "HEAD") and shape == "list" and collection is not None and override is None:
        params += [
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            {"name": "continue", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "labelSelector", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "fieldSelector", "in": "query", "required": False, "schema": {"type": "string"}},
        ]
    if path.startswith("/api/core/v2/cluster/"):
        params.append({"name": "timeout", "in": "query", "required": False,
                       "schema": {"type": "integer", "minimum": 1, "default": 3}})
        if method in ("POST", "PUT") and "members" in path:
            params.append({"name": "peer-addrs", "in": "query", "required": True, "schema": {"type": "string"}})
    if path.startswith("/silenced"):
        params.append({"name": "namespace", "in": "query", "required": False,
                       "schema": {"type": "string", "default": "default"}})
        if method == "GET" and path != "/silenced/ids/{id}":
            params += [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
                       {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer"}}]
    if params:
        op["parameters"] = params
    return op


def build_document(router: Router, *, server_url: str = "") -> dict[str, Any]:
    """The whole OpenAPI 3.0.3 document for ``router`` as it is now."""
    schemas = _Schemas()
    resources = _resource_schemas(schemas)
    paths: dict[str, dict[str, Any]] = {}
    op_ids: set[str] = set()
    for route in router.routes:
        path = route_path(route)
        item = paths.setdefault(path, {})
        names = [seg[1:-1] for seg in route.pattern if _is_param(seg)]
        if names and "parameters" not in item:
            item["parameters"] = [
                {"name": n, "in": "path", "required": True,
                 "schema": ({"type": "string", "enum": sorted(RESOURCES)} if n in _COLLECTION_PARAMS
                            else {"type": "string", "minLength": 1})}
                for n in names
            ]
        for method, handler in route.methods.items():
            key = method.lower()
            if key in item:  # an earlier route with the same pattern wins (first match)
                continue
            item[key] = _operation(method.upper(), path, route, handler, resources, op_ids)
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Sensu Go backend REST API (Python re-implementation)",
            "version": SENSU_COMPAT_VERSION,
            "description": "Generated at request time from the route table and the core/v2 resource registry. "
                           "Path segments are percent-encoded by clients (a silence id linux:* is linux%3A%2A).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                               "description": "Authorization: Key <api key>"},
                "basicAuth": {"type": "http", "scheme": "basic"},
            },
        },
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def register(router: Router, ctx: object) -> None:
    """Serve the document; registered last so the table it walks is complete.

    The document is built at request time anyway, so a family registered
    after this one would still appear.
    """

    async def openapi(call: Any) -> Response:
        """The OpenAPI 3.0 document of this API (public)."""
        req = call.request
        return json_body(build_document(router, server_url=f"{req.scheme}://{req.host}"))

    router.add(OPENAPI_PATH, {"GET": openapi}, public=True)
