"""Agent version constants.

The agent reports the Sensu Go version it is compatible with (``sensu_agent_version``
in its entity, ``GET /version``, ``sensu-agent version``), the same one the
backend emulates, so mixed fleets read consistently.
"""

from __future__ import annotations

from typing import Final

from core.version import BUILD_SHA, SENSU_COMPAT_VERSION

__all__ = ["AGENT_VERSION", "BUILD_SHA"]

AGENT_VERSION: Final = SENSU_COMPAT_VERSION
"""Semver sent as ``entity.sensu_agent_version`` and by ``GET /version``."""
