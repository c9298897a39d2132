"""Shared fixtures: real backend processes on loopback, always stopped afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


@pytest.fixture
async def single_node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[BackendProcess]:
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node")
    node.start()
    try:
        await node.wait_healthy(client)
        yield node
    finally:
        node.stop()


@pytest.fixture
async def cluster3(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[Cluster]:
    c = Cluster(make_cluster_nodes(tmp_path, 3), client)
    try:
        for node in c.nodes:
            node.start()
        await c.wait_healthy(45.0)
        yield c
    finally:
        c.stop()
