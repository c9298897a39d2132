"""Version constants.

Two versions matter: our own package version, and the Sensu Go release whose
behaviour, wire formats and ``/version`` answer we are compatible with (tools such
as ``sensuctl`` check the latter).
"""

from __future__ import annotations

import os
from typing import Final

PROJECT_VERSION: Final = "0.1.0"
"""Version of this package (``sensu-py-backend``)."""

SENSU_COMPAT_VERSION: Final = "6.9.2"
"""The Sensu Go version we emulate; reported by ``sensu-backend version`` and ``/version``."""

BUILD_SHA: Final = os.environ.get("SENSU_BUILD_SHA", "").strip()
"""Commit the build came from, read once at import (empty when unknown)."""
