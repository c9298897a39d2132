"""The real Ansible collection ``sensu.sensu_go`` 1.14.0 against a real three-node cluster.

The collection is the most demanding client we promise to serve (api.md §5): it
compares what it sent with what GET returns, so any field we drop, reorder or
rewrite shows up as a task that reports ``changed`` on every run. The playbook
``tests/ansible/api_playbook.yml`` is run as a user would run it:

1. converge, phase ``initial``   -> creates everything;
2. converge, phase ``initial``   -> must change nothing (except the ``event`` task,
   which by design always reports changed);
3. converge, phase ``updated``   -> must change every updatable object;
4. converge, phase ``updated``   -> must change nothing again;
5. teardown                       -> deletes everything, asserted through ``*_info``;
6. teardown                       -> must change nothing.

``ansible-playbook`` runs from the same virtualenv as pytest, with
``ANSIBLE_COLLECTIONS_PATH`` unset and ``ANSIBLE_HOME`` under ``tmp_path`` so the
collection bundled in the ``ansible`` package is the one found, whatever the
user's ``~/.ansible`` holds.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.harness.backend import REPO, Cluster

from .test_init import run_init

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLAYBOOK = REPO / "tests" / "ansible" / "api_playbook.yml"
ADMIN = ("admin", "P@ssw0rd!")
#: One ansible-playbook run; a converge run is ~50 module calls at ~1 s each.
PLAYBOOK_TIMEOUT_S = 600.0
#: Tasks whose name carries this marker report changed on every run by design (api.md §5).
ALWAYS_CHANGED = "[always_changed]"
#: Mutating modules with nothing to update between the phases.
NOT_UPDATABLE = {"sensu.sensu_go.namespace"}
COLLECTION_VERSION = "1.14.0"


@dataclass(frozen=True)
class TaskOutcome:
    """One task's result for localhost, as the ``ansible.posix.json`` callback reports it."""

    play: str
    name: str
    action: str
    changed: bool
    failed: bool
    msg: str


@dataclass(frozen=True)
class PlaybookRun:
    """A finished ``ansible-playbook`` process and its parsed JSON report."""

    label: str
    returncode: int
    stdout: str
    stderr: str
    tasks: list[TaskOutcome]
    stats: dict[str, Any]

    def failures(self) -> str:
        """Every failed task with its message, or the raw output if the report was unusable."""
        failed = [t for t in self.tasks if t.failed]
        if not failed:
            return f"rc={self.returncode}\nstderr:\n{self.stderr[-6000:]}\nstdout:\n{self.stdout[-6000:]}"
        return "\n".join(f"- [{t.play}] {t.name} ({t.action}): {t.msg}" for t in failed)

    def changed(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.changed]


def _parse_report(stdout: str) -> tuple[list[TaskOutcome], dict[str, Any]]:
    """The JSON document the callback prints at the end (anything before its first ``{`` is noise)."""
    start = stdout.find("{")
    if start < 0:
        return [], {}
    try:
        report = json.loads(stdout[start:])
    except ValueError:
        return [], {}
    tasks: list[TaskOutcome] = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            host = task.get("hosts", {}).get("localhost")
            if host is None:
                continue
            msg = host.get("msg", "")
            tasks.append(TaskOutcome(
                play=play["play"]["name"], name=task["task"]["name"], action=host.get("action", ""),
                changed=bool(host.get("changed")), failed=bool(host.get("failed")),
                msg=msg if isinstance(msg, str) else json.dumps(msg),
            ))
    return tasks, report.get("stats", {})


def _ansible_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no inherited ANSIBLE_*/SENSU_* settings, every temp dir under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SENSU_"))}
    home = tmp_path / "ansible-home"
    for sub in ("local-tmp", "remote-tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update({
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        # The modules run under the same interpreter as pytest: the venv's, which has bcrypt.
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        # ansible-core refuses to start without a UTF-8 locale.
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
    })
    return env


async def run_playbook(cluster: Cluster, tmp_path: Path, label: str, *, tags: str,
                       phase: str = "initial") -> PlaybookRun:
    """Run the playbook's plays with ``tags`` against the cluster, killed after PLAYBOOK_TIMEOUT_S."""
    extra = tmp_path / f"extra-vars-{label}.json"
    extra.write_text(json.dumps({
        "sensu_api_urls": [n.api_url for n in cluster.nodes],
        "sensu_admin_user": ADMIN[0],
        "sensu_admin_password": ADMIN[1],
        "sensu_phase": phase,
    }))
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(playbook_bin), "-i", "localhost,", "-c", "local", "--tags", tags, "-e", f"@{extra}", str(PLAYBOOK)]
    try:
        with trio.fail_after(PLAYBOOK_TIMEOUT_S):
            proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                          env=_ansible_env(tmp_path), cwd=str(tmp_path))
    except trio.TooSlowError:
        raise AssertionError(f"ansible-playbook ({label}) did not finish in {PLAYBOOK_TIMEOUT_S}s\n"
                             f"{cluster.logs()[-8000:]}") from None
    stdout = proc.stdout.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    (tmp_path / f"ansible-{label}.json").write_text(stdout)
    tasks, stats = _parse_report(stdout)
    return PlaybookRun(label, proc.returncode, stdout, stderr, tasks, stats)


def assert_succeeded(run: PlaybookRun, cluster: Cluster) -> None:
    assert run.returncode == 0 and run.tasks and not any(t.failed for t in run.tasks), (
        f"ansible-playbook {run.label} failed:\n{run.failures()}\n\nbackend logs (tail):\n{cluster.logs()[-6000:]}")


def assert_nothing_changed(run: PlaybookRun) -> None:
    """Second run of the same desired state: only the always-changed event task may say changed."""
    unexpected = [f"{t.name} ({t.action})" for t in run.changed() if ALWAYS_CHANGED not in t.name]
    assert unexpected == [], f"{run.label}: tasks reported changed on a repeated run: {unexpected}"


def _bundled_collection_version() -> str:
    """The version of the sensu.sensu_go that ``ansible-playbook`` will load (the ansible package's)."""
    import ansible_collections

    for root in ansible_collections.__path__:
        manifest = Path(root) / "sensu" / "sensu_go" / "MANIFEST.json"
        if manifest.exists():
            version: str = json.loads(manifest.read_text())["collection_info"]["version"]
            return version
    raise AssertionError("sensu.sensu_go is not installed; run `make venv`")


@pytest.mark.timeout(6 * PLAYBOOK_TIMEOUT_S)
async def test_collection_converges_idempotently_and_tears_down(cluster3: Cluster, tmp_path: Path) -> None:
    assert _bundled_collection_version() == COLLECTION_VERSION
    init = await trio.to_thread.run_sync(lambda: run_init(
        cluster3.nodes[0].api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert init.returncode == 0, init.stderr

    first = await run_playbook(cluster3, tmp_path, "converge-initial-1", tags="converge")
    assert_succeeded(first, cluster3)
    assert {t.action for t in first.changed()} >= {"sensu.sensu_go.namespace", "sensu.sensu_go.check"}

    second = await run_playbook(cluster3, tmp_path, "converge-initial-2", tags="converge")
    assert_succeeded(second, cluster3)
    assert_nothing_changed(second)

    updated = await run_playbook(cluster3, tmp_path, "converge-updated-1", tags="converge", phase="updated")
    assert_succeeded(updated, cluster3)
    not_updated = [
        f"{t.name} ({t.action})" for t in updated.tasks
        if t.action.startswith("sensu.sensu_go.") and not t.action.endswith("_info")
        and t.action not in NOT_UPDATABLE and not t.changed
    ]
    assert not_updated == [], f"the updated phase changed nothing for: {not_updated}"

    updated_again = await run_playbook(cluster3, tmp_path, "converge-updated-2", tags="converge", phase="updated")
    assert_succeeded(updated_again, cluster3)
    assert_nothing_changed(updated_again)

    teardown = await run_playbook(cluster3, tmp_path, "teardown-1", tags="teardown")
    assert_succeeded(teardown, cluster3)
    deleted = {t.action for t in teardown.changed()}
    assert {"sensu.sensu_go.check", "sensu.sensu_go.asset", "sensu.sensu_go.namespace",
            "sensu.sensu_go.cluster_role", "sensu.sensu_go.tessen"} <= deleted

    teardown_again = await run_playbook(cluster3, tmp_path, "teardown-2", tags="teardown")
    assert_succeeded(teardown_again, cluster3)
    assert_nothing_changed(teardown_again)
