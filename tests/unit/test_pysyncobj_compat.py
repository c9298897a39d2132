"""The import-time check of the pysyncobj internals the store relies on (cluster/raft/compat.py)."""

from __future__ import annotations

import pysyncobj.version
import pytest

from cluster.membership import Member, RaftSettings
from cluster.raft import compat
from cluster.raft.compat import (
    REQUIRED,
    REQUIRED_CONF_OPTIONS,
    REQUIRED_GLOBALS,
    PysyncobjMismatch,
    check_pysyncobj,
    missing_names,
)
from cluster.raft.node import conf_options


def test_the_installed_pysyncobj_has_everything_we_use() -> None:
    assert missing_names(REQUIRED, REQUIRED_GLOBALS, REQUIRED_CONF_OPTIONS) == []
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


def test_a_class_module_or_option_that_is_gone_is_named_once() -> None:
    missing = missing_names({"pysyncobj.syncobj.GoneClass": ("a", "b")}, {"pysyncobj.gone_module": ("c",)},
                            ["autoTick", "renamedOption"])
    assert missing == ["pysyncobj.syncobj.GoneClass", "pysyncobj.gone_module",
                       "pysyncobj.config.SyncObjConf option renamedOption"]


def test_every_option_a_member_sets_is_checked() -> None:
    member = Member("a", "http://127.0.0.1:2380")
    settings = RaftSettings(name="a", advertise_url=member.peer_url, listen_url=member.peer_url, members=(member,),
                            token="t", state_dir="/nonexistent")
    assert set(conf_options(settings, lambda old, new: None)) <= set(REQUIRED_CONF_OPTIONS)


def test_another_version_stops_with_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pysyncobj.version, "VERSION", "0.4.0")
    with pytest.raises(PysyncobjMismatch, match=r"pysyncobj 0\.4\.0 is installed, but .* pysyncobj 0\.3\.17"):
        check_pysyncobj()
    assert compat.PINNED_VERSION == "0.3.17"
