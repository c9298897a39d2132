"""The OpenAPI document stays true to the router: same operations both ways, refs resolve.

One test builds the real app on a real single-node store (so the route table
is exactly what a node serves; in a child process, see ``_DUMP_ROUTER``) and
compares it with the document both ways; another fetches the document from a running node and checks that every
documented path is routed there.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import httpx
import trio

from api.openapi import OPENAPI_PATH, build_document, documented_operations, routed_operations
from api.router import Router
from core.resources import RESOURCES
from tests.harness.backend import REPO, BackendProcess, free_port

_PARAM = re.compile(r"\{([^}]+)\}")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def check_document(doc: dict[str, Any]) -> None:
    """Structural rules a fuzzer relies on."""
    assert doc["openapi"].startswith("3.0.")
    schemas = doc["components"]["schemas"]
    for ref in set(_refs(doc)):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    op_ids: list[str] = []
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == set(_PARAM.findall(path)), path
        for method, op in item.items():
            if method == "parameters":
                continue
            assert method in {"get", "put", "post", "delete", "patch", "head", "options"}, method
            assert op["responses"] and "default" in op["responses"], (method, path)
            op_ids.append(op["operationId"])
    assert len(op_ids) == len(set(op_ids)), "operationIds must be unique"
    # every resource of the registry has a response and a request schema, with typed properties
    for rtype in RESOURCES.values():
        for name in (rtype.kind, f"{rtype.kind}Input"):
            schema = schemas[name]
            assert schema["type"] == "object" and schema["properties"], name
    assert "password_hash" not in schemas["User"]["properties"]
    assert "password" in schemas["UserInput"]["properties"]
    assert set(schemas["Silenced"]["required"]) >= {"expire", "expire_on_resolve", "begin", "expire_at"}
    assert schemas["User"]["required"] == ["username", "disabled"]
    assert schemas["CheckConfig"]["properties"]["interval"]["type"] == "integer"


#: Run in a child process: pysyncobj closes its sockets and journal on its tick
#: thread after ``destroy()``, which pytest would report as leaked resources.
_DUMP_ROUTER = """
import json, sys, trio
from api.app import create_app
from api.context import ApiContext
from api.openapi import build_document, routed_operations
from backend.config import BackendConfig
from backend.eventd.eventd import Eventd
from backend.node import api_settings
from cluster.membership import Member, RaftSettings
from cluster.store import open_store

async def main(peer, state_dir):
    settings = RaftSettings(name="openapi", advertise_url=peer, listen_url=peer, members=(Member("openapi", peer),),
                            token="openapi-test", state_dir=state_dir)
    async with open_store(settings) as store:
        ctx = ApiContext(store=store, settings=api_settings(BackendConfig()), node_name="openapi",
                         initial_members=list(settings.members), cluster_id=settings.cluster_id,
                         events=Eventd(store))
        router = create_app(ctx).extensions["sensu_router"]
        print(json.dumps({"routed": sorted(routed_operations(router)), "document": build_document(router)}))

trio.run(main, sys.argv[1], sys.argv[2])
"""


async def test_document_matches_the_router_of_a_real_app(tmp_path: Path) -> None:
    """The app as a node builds it (real single-node store), walked in a child process."""
    host = "127.0.0.1"
    peer = f"http://{host}:{free_port(host)}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with trio.fail_after(60):
        proc = await trio.run_process([sys.executable, "-c", _DUMP_ROUTER, peer, str(tmp_path / "raft")],
                                      capture_stdout=True, capture_stderr=True, check=False, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-5000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    doc = out["document"]
    routed = {(m, p) for m, p in out["routed"]}
    documented = documented_operations(doc)
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations that are not routed"
    assert ("GET", OPENAPI_PATH) in routed and ("GET", "/health") in routed
    for path in ("/auth", "/api/core/v2/users/{name}/groups/{group}", "/api/core/v2/cluster/members",
                 "/silenced/clear", "/api/core/v2/apikeys/{key}", "/init"):
        assert path in doc["paths"], path
    check_document(doc)
    # public routes say so; the rest need a token or a key
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert doc["paths"][OPENAPI_PATH]["get"]["security"] == []
    assert "security" not in doc["paths"]["/api/core/v2/users"]["get"]
    assert doc["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]


def test_document_follows_the_table_it_is_given() -> None:
    """Lazily built: a route added after registration shows up, and only routed operations appear."""
    from api.routes import all_families

    router = Router()
    for register in all_families():
        register(router, None)
    before = build_document(router)
    assert documented_operations(before) == routed_operations(router)

    async def late(call: Any) -> Any:
        """A route registered after the OpenAPI family."""

    router.add("/api/core/v2/late/{thing}", {"GET": late, "DELETE": late})
    after = build_document(router)
    assert documented_operations(after) == routed_operations(router)
    assert {("GET", "/api/core/v2/late/{thing}"), ("DELETE", "/api/core/v2/late/{thing}")} <= \
        documented_operations(after)
    check_document(after)


def _fill(path: str) -> str:
    return _PARAM.sub(lambda m: quote(f"x-{m.group(1)}", safe=""), path)


async def test_served_document_is_public_and_every_path_is_routed(single_node: BackendProcess,
                                                                  client: httpx.AsyncClient) -> None:
    node = single_node
    r = await client.get(f"{node.api_url}{OPENAPI_PATH}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    check_document(doc)
    assert doc["servers"] == [{"url": node.api_url}]
    # nothing routes OPTIONS, so a routed path answers 405 and an unknown one 404 (api.md §1.1)
    assert (await client.request("OPTIONS", f"{node.api_url}/no/such/path")).status_code == 404
    for path in doc["paths"]:
        r = await client.request("OPTIONS", f"{node.api_url}{_fill(path)}")
        assert r.status_code == 405, (path, r.status_code, r.text)
    # and every documented method is served there (no 405)
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get",) and "{" not in path:
                r = await client.request(method.upper(), f"{node.api_url}{path}")
                assert r.status_code != 405, (method, path)
