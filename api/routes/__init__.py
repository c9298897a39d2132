"""Route families; each module has ``register(router, ctx)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["all_families"]


def all_families() -> list[Callable[[Router, object], None]]:
    """Every route family, in registration order (first match wins)."""
    from . import auth

    families: list[Callable[[Router, object], None]] = [auth.register]
    for name in ("cluster", "users", "namespaces", "entities", "events", "silenced", "checks", "resources",
                 "classic_silenced", "openapi"):
        path = "api.openapi" if name == "openapi" else f"api.routes.{name}"  # openapi lives in api/, last
        try:
            module = __import__(path, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != path:
                raise
            continue
        families.append(module.register)
    return families
