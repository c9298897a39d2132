"""Fuzz the REST API's write routes on a real node: no input is worth a 500, and failures write nothing.

Why against a real process: the promise under test (api.md §1.3, STYLE §3 "Errors reach
the user") spans hypercorn's body limit, quart's request parsing, our raw-path router,
the resource decoders, validation and the store; a unit test of any one layer cannot
show that a malformed request never becomes a 500 nor half a write.

For every POST/PUT/PATCH under ``/api/core/v2`` (taken from the live
``GET /api/core/v2/openapi.json`` when the node serves it, from a static table
otherwise) hypothesis sends: malformed JSON, JSON of the wrong shape, known
fields with the wrong type, names of 100 KB, bodies over the request limit,
unknown fields, and random (percent-encoded) path segments. Every answer must
be below 500, and every 4xx must be the JSON ``{"message", "code"}`` body
(the documented plain-text exceptions aside). Before and after the run every
collection is listed; objects may differ only where a 2xx answer explains it.

Hypothesis runs in a worker thread (its engine is synchronous) and each example
calls back into trio with ``trio.from_thread.run``; the run is derandomized and
bounded (``MAX_EXAMPLES``) so CI sees the same requests every time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
import trio
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from tests.harness.backend import BackendProcess

from .test_init import run_init

pytestmark = [pytest.mark.e2e]

ADMIN: Final = ("admin", "P@ssw0rd!")
API: Final = "/api/core/v2"
MAX_EXAMPLES: Final = 200
#: Over the default ``--api-request-limit`` of 512000 bytes (api.md preamble).
OVER_LIMIT: Final = 600_000
HUGE: Final = 100_000

#: Routes whose errors are plain text in Sensu, and so in ours (api.md §1.4).
PLAIN_TEXT_ERRORS: Final = {("POST", f"{API}/apikeys")}
#: Routes left out: cluster membership changes Raft itself, not a resource collection.
EXCLUDED_PREFIXES: Final = (f"{API}/cluster/", f"{API}/openapi.json")

NAMESPACED: Final = ("assets", "checks", "entities", "events", "filters", "handlers", "hooks", "mutators",
                     "pipelines", "roles", "rolebindings", "silenced")
CLUSTER_WIDE: Final = ("namespaces", "users", "clusterroles", "clusterrolebindings", "apikeys")


def _static_operations() -> list[tuple[str, str]]:
    """(method, path template) when the node serves no OpenAPI document yet."""
    ops: list[tuple[str, str]] = []
    for c in NAMESPACED:
        ops += [("POST", f"{API}/namespaces/{{ns}}/{c}"), ("PUT", f"{API}/namespaces/{{ns}}/{c}/{{name}}"),
                ("PATCH", f"{API}/namespaces/{{ns}}/{c}/{{name}}")]
    for c in CLUSTER_WIDE:
        ops += [("POST", f"{API}/{c}"), ("PUT", f"{API}/{c}/{{name}}"), ("PATCH", f"{API}/{c}/{{name}}")]
    ops += [("PUT", f"{API}/users/{{name}}/groups/{{group}}"), ("PUT", f"{API}/users/{{name}}/reinstate"),
            ("PUT", f"{API}/users/{{name}}/password"), ("PUT", f"{API}/users/{{name}}/reset_password"),
            ("PUT", f"{API}/tessen")]
    return ops


def _collection_of(template: str) -> str:
    """``/api/core/v2/namespaces/{ns}/checks/{name}`` → ``checks``; cluster-wide types likewise."""
    parts = template[len(API) + 1:].split("/")
    if parts[0] == "namespaces" and len(parts) >= 3:
        return parts[2]
    return parts[0]


# ------------------------------------------------------------------------------ request strategies

def _base_body(collection: str, ns: str, name: str) -> Any:
    """A body that is valid, or nearly so, for the collection: mutations then reach deep validation."""
    meta = {"name": name, "namespace": ns}
    bodies: dict[str, Any] = {
        "namespaces": {"name": name},
        "checks": {"metadata": meta, "command": "true", "interval": 60, "subscriptions": ["fuzz"],
                   "publish": False},
        "hooks": {"metadata": meta, "command": "true", "timeout": 10},
        "entities": {"metadata": meta, "entity_class": "proxy", "subscriptions": ["fuzz"]},
        "events": {"metadata": {"namespace": ns},
                   "entity": {"metadata": {"name": name, "namespace": ns}, "entity_class": "proxy"},
                   "check": {"metadata": {"name": "fuzz-check", "namespace": ns}, "status": 1, "output": "x",
                             "interval": 60}},
        "handlers": {"metadata": meta, "type": "pipe", "command": "true"},
        "filters": {"metadata": meta, "action": "allow", "expressions": ["event.check.status == 1"]},
        "mutators": {"metadata": meta, "command": "true"},
        "silenced": {"metadata": meta, "subscription": "fuzz", "check": "fuzz-check"},
        "assets": {"metadata": meta, "url": "https://assets.example/a.tar.gz", "sha512": "a" * 128},
        "pipelines": {"metadata": meta, "workflows": [
            {"name": "w", "handler": {"name": "h", "type": "Handler", "api_version": "core/v2"}}]},
        "roles": {"metadata": meta, "rules": [{"verbs": ["get"], "resources": ["checks"]}]},
        "rolebindings": {"metadata": meta, "subjects": [{"type": "User", "name": "fuzz"}],
                         "role_ref": {"type": "Role", "name": "fuzz"}},
        "clusterroles": {"metadata": {"name": name}, "rules": [{"verbs": ["get"], "resources": ["checks"]}]},
        "clusterrolebindings": {"metadata": {"name": name}, "subjects": [{"type": "Group", "name": "fuzz"}],
                                "role_ref": {"type": "ClusterRole", "name": "fuzz"}},
        "users": {"username": name, "password": "fuzz-P@ssw0rd", "disabled": False},
        "apikeys": {"username": "fuzz-user"},
        "tessen": {"opt_out": False},
    }
    return json.loads(json.dumps(bodies.get(collection, {"metadata": meta})))


#: A value of some other JSON type than the field's schema type.
WRONG_TYPED: Final[dict[str, st.SearchStrategy[Any]]] = {
    "string": st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
    "integer": st.one_of(st.sampled_from(["60", "", "1e3"]), st.floats(allow_nan=False, allow_infinity=False),
                         st.sampled_from([-1, 2**32, 2**64, -(2**63) - 1]), st.booleans(), st.just([1])),
    "number": st.one_of(st.text(max_size=5), st.booleans(), st.just({})),
    "boolean": st.one_of(st.sampled_from(["true", "yes", 1, 0]), st.just([True])),
    "array": st.one_of(st.text(max_size=5), st.integers(), st.just({"a": 1}),
                       st.lists(st.one_of(st.integers(), st.just({}), st.none()), min_size=1, max_size=3)),
    "object": st.one_of(st.text(max_size=5), st.integers(), st.just([1, 2]),
                        st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.just([])),
                                        min_size=1, max_size=2)),
}
JSON_LEAF: Final = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                             st.text(max_size=20))
JSON_ANY: Final = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
MALFORMED: Final = st.one_of(
    st.sampled_from([b"{", b'{"metadata":', b"[1,2", b"nul", b"{'a': 1}", b'{"a":1}}', b"\xff\xfe\x00",
                     b'{"name": "x",}', b"NaN", b'"\\ud800"', b"{" * 2000]),
    st.binary(min_size=1, max_size=64).filter(lambda b: not _is_json(b)),
)
SEGMENT_TEXT: Final = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
#: Item names: a plausible one, random text, or huge. Never an existing built-in such as
#: ``admin`` or ``cluster-admin`` (a 2xx there would lock the fuzzer out, not find a bug).
NAMES: Final = st.one_of(st.just("fuzz-obj"), st.from_regex(r"\Afuzz-[a-z0-9]{1,8}\Z"), SEGMENT_TEXT)
NAMESPACES: Final = st.one_of(st.just("default"), st.just("default"), SEGMENT_TEXT)


#: Well-formed JSON nested deeper than Python's recursion limit (json.loads raises RecursionError).
DEEP_VALID: Final = (b'{"metadata": {"name": "deep", "namespace": "default"}, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}")


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _segment(text: str) -> str:
    """Percent-encode one path segment, dots too, so no client normalizes ``..`` away."""
    return quote(text, safe="").replace(".", "%2E")


@dataclass(frozen=True)
class Operation:
    """One write route: method, path template, its collection and its body's top-level field types."""

    method: str
    template: str
    collection: str
    fields: dict[str, str] = field(default_factory=dict)  # property -> JSON schema type


@dataclass(frozen=True)
class FuzzRequest:
    """One request as sent (path already percent-encoded); ``kind`` names the body strategy."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    kind: str


@st.composite
def fuzz_requests(draw: st.DrawFn, ops: list[Operation]) -> FuzzRequest:
    """A write to a random operation, with random path segments and one kind of bad (or good) body."""
    op = draw(st.sampled_from(ops))
    ns = draw(NAMESPACES)
    name = draw(NAMES)
    params = {"ns": ns, "name": name}
    path = op.template
    for param in [p[1:-1] for p in op.template.split("/") if p.startswith("{")]:
        value = params.get(param) or draw(NAMES)
        path = path.replace("{" + param + "}", _segment(value), 1)
    base = _base_body(op.collection, ns, name)
    kind = draw(st.sampled_from(["malformed", "not-an-object", "wrong-type", "huge-name", "over-limit",
                                 "unknown-fields", "valid-ish"]))
    body: Any
    if kind == "malformed":
        raw = draw(MALFORMED)
    else:
        if kind == "not-an-object":
            body = draw(st.one_of(JSON_LEAF, st.lists(JSON_LEAF, max_size=3)))
        elif kind == "wrong-type" and isinstance(base, dict):
            fields = op.fields or {"metadata": "object"}
            prop = draw(st.sampled_from(sorted(fields)))
            body = {**base, prop: draw(WRONG_TYPED.get(fields[prop], WRONG_TYPED["object"]))}
            if isinstance(base.get("metadata"), dict) and draw(st.booleans()):
                meta_field = draw(st.sampled_from(["name", "namespace", "labels", "annotations"]))
                wrong = WRONG_TYPED["object" if meta_field in ("labels", "annotations") else "string"]
                body["metadata"] = {**base["metadata"], meta_field: draw(wrong)}
        elif kind == "huge-name" and isinstance(base, dict):
            huge = draw(st.sampled_from(["a", "é", "-", "ω"])) * HUGE
            body = base
            if "metadata" in body:
                body["metadata"]["name"] = huge
                body["metadata"]["labels"] = {"k": huge}
            for key in ("name", "username", "subscription", "command"):
                if key in body:
                    body[key] = huge
        elif kind == "over-limit":
            body = {**(base if isinstance(base, dict) else {}), "padding": "x" * OVER_LIMIT}
        elif kind == "unknown-fields" and isinstance(base, dict):
            extra = draw(st.dictionaries(st.text(max_size=12), JSON_ANY, min_size=1, max_size=4))
            body = {**extra, **base}
            if isinstance(base.get("metadata"), dict):
                body["metadata"] = {**base["metadata"], **draw(st.dictionaries(
                    st.text(max_size=8), JSON_ANY, max_size=2))}
        else:
            body = base
        raw = json.dumps(body, ensure_ascii=False).encode()
    if op.method == "PATCH":
        ctype = draw(st.sampled_from(["application/merge-patch+json", "", "application/json-patch+json",
                                      "application/json"]))
    else:
        ctype = draw(st.sampled_from(["application/json", "", "text/plain"]))
    headers = {"Content-Type": ctype} if ctype else {}
    return FuzzRequest(op.method, path, raw, headers, kind)


# ------------------------------------------------------------------------------ snapshots

ObjectKey = tuple[str, str, str]  # (collection, namespace, name)


def _key(collection: str, obj: dict[str, Any]) -> ObjectKey:
    if collection == "namespaces":
        return (collection, "", str(obj.get("name")))
    if collection == "users":
        return (collection, "", str(obj.get("username")))
    meta = obj.get("metadata") or {}
    if collection == "events":
        entity = ((obj.get("entity") or {}).get("metadata") or {}).get("name", "")
        check = ((obj.get("check") or {}).get("metadata") or {}).get("name", "")
        return (collection, str(meta.get("namespace", "")), f"{entity}/{check}")
    return (collection, str(meta.get("namespace", "")), str(meta.get("name", "")))


async def snapshot(client: httpx.AsyncClient, node: BackendProcess, headers: dict[str, str]) -> dict[ObjectKey, Any]:
    """Every object of every collection (namespaced ones across all namespaces), plus tessen."""
    objects: dict[ObjectKey, Any] = {}
    for collection in NAMESPACED + CLUSTER_WIDE:
        r = await client.get(f"{node.api_url}{API}/{collection}", headers=headers)
        assert r.status_code == 200, f"GET {API}/{collection}: {r.status_code} {r.text[:300]}"
        for obj in r.json():
            objects[_key(collection, obj)] = obj
    r = await client.get(f"{node.api_url}{API}/tessen", headers=headers)
    assert r.status_code == 200, r.text
    objects[("tessen", "", "")] = r.json()
    return objects


def allowed_changes(req: FuzzRequest) -> set[ObjectKey]:
    """The objects a 2xx answer to ``req`` may have created, replaced or removed ("*" = any)."""
    from urllib.parse import unquote

    parts = [unquote(p) for p in req.path[len(API) + 1:].split("/")]
    body: Any = None
    try:
        body = json.loads(req.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass

    def body_str(obj: Any, key: str) -> str:
        """``obj[key]`` if ``obj`` is an object holding a string there, else the wildcard."""
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, str) else "*"

    body_name = body_str(body.get("metadata") if isinstance(body, dict) else None, "name")
    if parts[0] == "namespaces" and len(parts) <= 2:
        ns = parts[1] if len(parts) == 2 else body_str(body, "name")
        # Creating a namespace also writes its system:pipeline role and binding (api.md §2.1).
        return {("namespaces", "", ns), ("roles", ns, "*"), ("rolebindings", ns, "*")}
    if parts[0] == "namespaces":
        ns, collection, rest = parts[1], parts[2], parts[3:]
        keys: set[ObjectKey] = {(collection, ns, rest[0] if rest else body_name)}
        if collection in ("events", "entities", "silenced"):
            # events create proxy entities; silenced names are computed from the body.
            keys |= {("events", ns, "*"), ("entities", ns, "*"), ("silenced", ns, "*")}
        return keys
    if parts[0] == "tessen":
        return {("tessen", "", "")}
    if parts[0] == "users" and len(parts) == 1:
        return {("users", "", body_str(body, "username"))}
    return {(parts[0], "", parts[1] if len(parts) > 1 else body_name)}


def _explained(key: ObjectKey, allowed: set[ObjectKey]) -> bool:
    return any(all(a in ("*", k) for a, k in zip(pattern, key)) for pattern in allowed)


# ------------------------------------------------------------------------------ the test

async def _operations(client: httpx.AsyncClient, node: BackendProcess) -> tuple[list[Operation], str]:
    """Write operations from the live OpenAPI document, or the static table if there is none."""
    r = await client.get(f"{node.api_url}{API}/openapi.json")
    if r.status_code != 200:
        return [Operation(m, t, _collection_of(t)) for m, t in _static_operations()], "static"
    doc = r.json()
    schemas = doc.get("components", {}).get("schemas", {})
    ops: list[Operation] = []
    for template, item in sorted(doc["paths"].items()):
        if not template.startswith(API + "/") or template.startswith(EXCLUDED_PREFIXES):
            continue
        for method in ("post", "put", "patch"):
            if method not in item:
                continue
            fields: dict[str, str] = {}
            content = item[method].get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            for prop, spec in schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}).items():
                fields[prop] = spec.get("type") or "object"
            ops.append(Operation(method.upper(), template, _collection_of(template), fields))
    return ops, "openapi"


async def test_no_write_request_gets_a_500_or_writes_on_failure(single_node: BackendProcess,
                                                                 client: httpx.AsyncClient) -> None:
    node = single_node
    init = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert init.returncode == 0, init.stderr
    r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    ops, source = await _operations(client, node)
    assert ops, "no write operation found"
    covered = {op.collection for op in ops}
    assert set(NAMESPACED + CLUSTER_WIDE) <= covered, f"{source} lacks {set(NAMESPACED + CLUSTER_WIDE) - covered}"

    before = await snapshot(client, node, auth)
    successes: list[FuzzRequest] = []
    problems: list[str] = []

    async def send(req: FuzzRequest) -> httpx.Response:
        # A connection of its own per request: a request that wedges its connection is caught by
        # test_a_body_rejected_unread_does_not_wedge_the_connection, and must not be blamed on
        # whichever example happens to reuse that connection next.
        with trio.fail_after(30):
            async with httpx.AsyncClient(timeout=30.0) as fresh:
                return await fresh.request(req.method, f"{node.api_url}{req.path}", content=req.body,
                                           headers={**auth, **req.headers})

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(req=fuzz_requests(ops))
    @example(req=FuzzRequest("POST", f"{API}/namespaces/%0A/assets", b"{", {}, "newline-segment"))
    @example(req=FuzzRequest("PUT", f"{API}/namespaces/default/checks/a%0Ab", b"{}", {}, "newline-segment"))
    @example(req=FuzzRequest("POST", f"{API}/namespaces/default/checks", b"[" * 5000, {}, "deep-malformed"))
    @example(req=FuzzRequest("PUT", f"{API}/namespaces/default/checks/deep", DEEP_VALID, {}, "deep-valid"))
    @example(req=FuzzRequest("PATCH", f"{API}/namespaces/default/checks/deep", DEEP_VALID, {}, "deep-valid"))
    @example(req=FuzzRequest("PUT", f"{API}/users/deep", DEEP_VALID, {}, "deep-valid"))
    @example(req=FuzzRequest("PUT", f"{API}/namespaces/default/checks/fuzz-surrogate", json.dumps(
        {**_base_body("checks", "default", "fuzz-surrogate"), "command": "\udc00"}).encode(), {}, "lone-surrogate"))
    def one_request(req: FuzzRequest) -> None:
        note(f"{req.method} {req.path[:300]} kind={req.kind} headers={req.headers} body={req.body[:300]!r}")
        resp = trio.from_thread.run(send, req)
        note(f"-> {resp.status_code} {resp.headers.get('content-type')} {resp.text[:300]!r}")
        assert resp.status_code < 500, f"{req.method} {req.path[:200]} ({req.kind}) answered {resp.status_code}"
        if 200 <= resp.status_code < 300:
            successes.append(req)
            return
        template = next((op.template for op in ops if op.method == req.method
                         and _matches(op.template, req.path)), "")
        if (req.method, template) in PLAIN_TEXT_ERRORS:
            return
        assert resp.status_code >= 400, f"unexpected {resp.status_code}"
        assert resp.headers.get("content-type", "").startswith("application/json"), \
            f"{resp.status_code} answer is not JSON: {resp.headers.get('content-type')} {resp.text[:200]!r}"
        payload = resp.json()
        assert isinstance(payload, dict) and isinstance(payload.get("message"), str) \
            and isinstance(payload.get("code"), int), f"{resp.status_code} body lacks message/code: {payload!r}"

    await trio.to_thread.run_sync(one_request)

    after = await snapshot(client, node, auth)
    allowed: set[ObjectKey] = set()
    for req in successes:
        allowed |= allowed_changes(req)
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key) and not _explained(key, allowed):
            problems.append(f"{key} changed without a 2xx answer: {str(before.get(key))[:200]} -> "
                            f"{str(after.get(key))[:200]}")
    assert problems == [], "\n".join(problems)


async def test_a_body_rejected_unread_does_not_wedge_the_connection(single_node: BackendProcess) -> None:
    """An answer given before the body is read (401, 413) must leave the connection usable or closed.

    Why: hypercorn (0.18) feeds the body into a 10-slot queue; if the app answers without
    draining it, the reader blocks on the full queue and the ``http.disconnect`` that would
    close the stream blocks behind it, so the connection hangs forever and the client's next
    keep-alive request on it never gets an answer. One connection: both requests share it.
    Sizes: just over the limit, and ten times it (so the unread rest alone fills the queue).
    """
    node = single_node
    init = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert init.returncode == 0, init.stderr
    for size in (OVER_LIMIT, 10 * OVER_LIMIT):
        big = b"{" + b" " * size + b"}"
        async with httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=1)) as one:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                r = await one.put(f"{node.api_url}{API}/namespaces/default/checks/c", content=big, headers=headers)
                assert r.status_code in (401, 413), r.text
                try:
                    with trio.fail_after(10):
                        after = await one.get(f"{node.api_url}/health")
                except (trio.TooSlowError, httpx.TimeoutException):
                    raise AssertionError(f"the connection hung after a {r.status_code} answer to an unread "
                                         f"{len(big)}-byte body") from None
                assert after.status_code == 200


async def test_deeply_nested_json_outside_core_v2_bodies_is_a_4xx(single_node: BackendProcess,
                                                                   client: httpx.AsyncClient) -> None:
    """JSON nested past Python's recursion limit, where core/v2 bodies are not the carrier.

    Why: ``json.loads`` raises ``RecursionError`` (not ``ValueError``) on it; every place that
    parses client JSON must turn that into a 4xx. Two such places take it from anyone:
    the header of a Bearer token (before any credentials are checked) and the classic
    ``POST /silenced`` body.
    """
    import base64

    node = single_node
    init = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert init.returncode == 0, init.stderr

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    forged = f"{b64(b'[' * 3000)}.{b64(b'{}')}.{b64(b'x')}"
    r = await client.get(f"{node.api_url}{API}/namespaces", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401, r.text
    r = await client.post(f"{node.api_url}/silenced", content=b"[" * 3000, auth=ADMIN)
    assert 400 <= r.status_code < 500, r.text


def _matches(template: str, path: str) -> bool:
    t, p = template.split("/"), path.split("/")
    return len(t) == len(p) and all(a.startswith("{") or a == b for a, b in zip(t, p))
