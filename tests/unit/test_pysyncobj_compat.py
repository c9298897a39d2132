"""The import-time check of the pysyncobj internals the store relies on."""

from __future__ import annotations

import pysyncobj.version
import pytest

from cluster import pysyncobj_compat
from cluster.pysyncobj_compat import REQUIRED, REQUIRED_GLOBALS, PysyncobjMismatch, check_pysyncobj, missing_names


def test_the_installed_pysyncobj_has_everything_we_use() -> None:
    assert missing_names(REQUIRED, REQUIRED_GLOBALS) == []
    check_pysyncobj()


class _Upgraded:
    """A class as a later pysyncobj might have it: one method renamed, one attribute gone."""

    def __init__(self) -> None:
        self._Upgraded__kept = 1

    def renamed_method(self) -> None:
        pass


def test_a_renamed_or_removed_name_is_named() -> None:
    missing = missing_names({_Upgraded: ("_Upgraded__kept", "_Upgraded__gone", "old_method")})
    assert missing == [f"{__name__}._Upgraded._Upgraded__gone", f"{__name__}._Upgraded.old_method"]


def test_another_version_stops_with_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pysyncobj.version, "VERSION", "0.4.0")
    with pytest.raises(PysyncobjMismatch, match=r"pysyncobj 0\.4\.0 is installed, but .* pysyncobj 0\.3\.17"):
        check_pysyncobj()
    assert pysyncobj_compat.PINNED_VERSION == "0.3.17"
