"""Route families; each module has ``register(router, ctx)``."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["all_families"]


def all_families() -> list[Callable[[Any, Any], None]]:
    """Every route family, in registration order (first match wins)."""
    from . import auth

    families = [auth.register]
    for name in ("cluster", "users", "resources", "classic_silenced"):
        try:
            module = __import__(f"api.routes.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"api.routes.{name}":
                raise
            continue
        families.append(module.register)
    return families
