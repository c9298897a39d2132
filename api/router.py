"""Routing on the raw (still percent-encoded) path, as Sensu Go does.

Clients percent-encode every path segment (Ansible uses ``quote(part,
safe="")``), so a silence named ``linux:*`` arrives as ``linux%3A%2A`` and an
asset ``sensu/plugins`` as ``sensu%2Fplugins``. Routing on the decoded path
would split that asset name in two, so we split ``scope["raw_path"]`` on ``/``
first and unquote each segment afterwards (api.md §1.1).

A pattern is a tuple of literal segments and ``{name}`` placeholders; a
placeholder matches exactly one non-empty segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

__all__ = ["Route", "Router", "split_raw_path"]

Handler = Callable[..., Awaitable[Any]]


def split_raw_path(raw_path: bytes | str) -> list[str] | None:
    """``/a/b%2Fc`` → ``["a", "b/c"]``; None for an empty segment (``//``, trailing ``/``)."""
    text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    text = text.split("?", 1)[0]
    if text == "/":
        return []
    parts = text.lstrip("/").split("/")
    if any(p == "" for p in parts):
        return None
    return [unquote(p) for p in parts]


@dataclass(frozen=True)
class Route:
    pattern: tuple[str, ...]
    methods: dict[str, Handler]
    public: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for pat, seg in zip(self.pattern, segments):
            if pat.startswith("{") and pat.endswith("}"):
                params[pat[1:-1]] = seg
            elif pat != seg:
                return None
        return params


class Router:
    """An ordered route table; the first pattern that matches wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, path: str, methods: dict[str, Handler], *, public: bool = False) -> None:
        pattern = tuple(p for p in path.strip("/").split("/") if p)
        self.routes.append(Route(pattern, methods, public))

    def resolve(self, segments: list[str]) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(segments)
            if params is not None:
                return route, params
        return None
