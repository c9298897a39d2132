"""Fetch, verify and unpack runtime assets for the backend's handlers, mutators and filters.

Why this exists: nearly every Sensu Go user installs the Slack, PagerDuty,
email or InfluxDB handler as a runtime asset. Without assets their command
is not found, and an alert is lost without a word.

What it does, as Sensu Go's ``asset`` package does for the backend:

* **Build selection.** An asset with ``builds`` uses the first build whose
  ``filters`` (JavaScript, with ``entity`` bound to this backend's own
  entity: ``entity.system.os``, ``arch``, ``platform``...) are all true; an
  asset without builds is used when its own ``filters`` pass. No match means
  the asset is not installed and not put on PATH (Go: "entity not filtered").
  The choice is cached per asset definition (the backend's system does not
  change while it runs).
* **Install once.** The cache is ``<cache-dir>/assets/<sha512>/``. A
  download streams into a private temporary directory under the same root,
  is hashed as it arrives, checked against ``sha512``, unpacked there (tar,
  optionally gzip/bzip2/xz compressed, with tarfile's ``data`` filter: no
  absolute paths, no links out of the tree, no device files) and only then
  renamed into place, so the cache directory of an asset exists only once it
  is complete. A bad checksum, an HTTP error or a broken archive is an
  :class:`AssetError` naming the asset and the reason, and leaves nothing
  behind. Concurrent first uses of one build wait on one lock per sha512 and
  share its single download.
* **Rate.** Downloads are limited by ``assets-rate-limit`` per second with a
  burst of ``assets-burst-limit`` (a token bucket, like Go's ``rate.Limiter``);
  a rate of 0 means no limit.
* **Headers.** An asset's (or its build's) ``headers`` are sent with the
  request. ``https`` downloads trust the backend's ``trusted-ca-file`` (the
  system CAs otherwise) and skip verification with ``insecure-skip-tls-verify``.

Threads: hashing is per chunk on the loop (microseconds); writes go through
``trio.open_file``; unpacking, renaming and directory scans run in
``trio.to_thread`` so the event loop never waits on the disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import ssl
import tarfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from backend.pipeline.jsengine import JSEngine, build_entity_env
from backend.summary import Summary

__all__ = ["AssetError", "AssetManager", "RuntimeAsset", "asset_env", "backend_entity", "select_build"]

logger = logging.getLogger(__name__)

#: Seconds an asset download may wait for the server between two reads (httpx read timeout).
DOWNLOAD_TIMEOUT_S: Final = 60.0
#: Subdirectory of ``cache-dir`` holding one directory per installed sha512.
ASSETS_SUBDIR: Final = "assets"


class AssetError(Exception):
    """An asset could not be provided; ``str()`` names the asset and says why."""

    def __init__(self, asset: str, reason: str) -> None:
        super().__init__(f"runtime asset {asset!r}: {reason}")
        self.asset = asset
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RuntimeAsset:
    """An installed asset: where it lives and the directories Sensu puts on the paths."""

    name: str
    sha512: str
    path: Path

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    @property
    def lib_dir(self) -> Path:
        return self.path / "lib"

    @property
    def include_dir(self) -> Path:
        return self.path / "include"


@dataclass(frozen=True, slots=True)
class _Build:
    url: str
    sha512: str
    headers: Mapping[str, str]


def asset_env(assets: Sequence[RuntimeAsset], base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every asset's ``bin`` prepended to PATH, ``lib`` to LD_LIBRARY_PATH and
    ``include`` to CPATH, in the order the resource lists its assets (Go's ``RuntimeAssetSet.Env``)."""
    env = dict(base)
    if not assets:
        return env
    for key, attr in (("PATH", "bin_dir"), ("LD_LIBRARY_PATH", "lib_dir"), ("CPATH", "include_dir")):
        prefix = "".join(f"{getattr(a, attr)}{os.pathsep}" for a in assets)
        env[key] = prefix + base.get(key, "")
    return env


def backend_entity(labels: Mapping[str, str] | None = None,
                   annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This backend as an entity of class ``backend``, with its system facts and the
    backend's ``labels``/``annotations`` settings (as Go's ``getBackendEntity``).

    Blocking (reads small files under /etc and /proc): call it in a thread.
    The facts are collected by the same code the agent uses, so an asset
    filter such as ``entity.system.os == 'linux'`` means the same thing on
    both sides.
    """
    from core.system import collect_system  # the agent's collector too: one definition of system facts

    system = collect_system(strip_networks=True).to_wire()
    return {"metadata": {"name": socket.gethostname(), "namespace": "", "labels": dict(labels or {}),
                         "annotations": dict(annotations or {})},
            "entity_class": "backend", "system": system}


def select_build(asset: Mapping[str, Any], passes: Sequence[bool]) -> _Build | None:
    """The build to install, given whether each candidate's filters passed.

    Candidates are the asset's ``builds`` in order, or the asset itself when
    it has none; ``passes`` has one entry per candidate. The first passing
    candidate wins (Go's ``filteredManager``); a build's headers fall back to
    the asset's.
    """
    candidates = _candidates(asset)
    for candidate, ok in zip(candidates, passes):
        if ok:
            headers = candidate.get("headers") or asset.get("headers") or {}
            return _Build(url=str(candidate.get("url") or ""), sha512=str(candidate.get("sha512") or "").lower(),
                          headers={str(k): str(v) for k, v in headers.items()})
    return None


def _candidates(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    builds = asset.get("builds") or []
    return list(builds) if builds else [asset]


class _TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`acquire` waits for one (0 = no limit)."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = float(rate)
        self._burst = max(1, int(burst))
        self._tokens = float(self._burst)
        self._at = trio.current_time()
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        if self._rate <= 0:
            return
        async with self._lock:
            now = trio.current_time()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1:
                await trio.sleep((1 - self._tokens) / self._rate)
                self._tokens = 1.0
                self._at = trio.current_time()
            self._tokens -= 1


class AssetManager:
    """The node's asset cache; one per backend process.

    ``entity`` is the backend entity the build filters see (collected in a
    thread by :meth:`start` when not given). Raises :class:`AssetError` from
    :meth:`get`; never leaves a partial install.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], *, js: JSEngine | None = None, rate: float = 1.39,
                 burst: int = 100, entity: Mapping[str, Any] | None = None, trusted_ca_file: str = "",
                 insecure_skip_tls_verify: bool = False, labels: Mapping[str, str] | None = None,
                 annotations: Mapping[str, str] | None = None) -> None:
        self._root = Path(cache_dir) / ASSETS_SUBDIR
        self._js = js or JSEngine(max_workers=1)
        self._rate, self._burst = rate, burst
        self._bucket: _TokenBucket | None = None
        self._entity: dict[str, Any] | None = dict(entity) if entity is not None else None
        self._labels, self._annotations = dict(labels or {}), dict(annotations or {})
        self._locks: dict[str, trio.Lock] = {}
        self._selected: dict[str, _Build | None] = {}
        self._scripts: dict[str, tuple[str, ...]] = {}
        self.stats = {"downloads": 0, "installed": 0, "cache_hits": 0, "failures": 0}
        #: seconds per download and per unpack (Sensu Go's sensu_go_asset_fetch/expand_duration)
        self.durations = {"fetch": Summary(), "expand": Summary()}
        # https downloads: the backend's trusted-ca-file and insecure-skip-tls-verify, as Go's fetcher
        self._trusted_ca_file = trusted_ca_file
        self._verify: ssl.SSLContext | bool = not insecure_skip_tls_verify

    async def start(self) -> None:
        """Collect the backend entity (if not given) and load ``trusted-ca-file``.

        The cache root is created on the first install, not here: only
        resources that name runtime assets need it, and a cache that cannot
        be written is then an error naming the asset and the reason.
        """
        if self._entity is None:
            self._entity = await trio.to_thread.run_sync(backend_entity, self._labels, self._annotations)
        if self._verify is True and self._trusted_ca_file:
            try:
                self._verify = await trio.to_thread.run_sync(
                    lambda: ssl.create_default_context(cafile=self._trusted_ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise AssetError("trusted-ca-file", f"cannot load {self._trusted_ca_file}: {exc}") from None

    async def get_all(self, assets: Sequence[Mapping[str, Any]]) -> list[RuntimeAsset]:
        """Install (or find) each asset in order; assets with no matching build are left out."""
        out = []
        for asset in assets:
            runtime = await self.get(asset)
            if runtime is not None:
                out.append(runtime)
        return out

    async def get(self, asset: Mapping[str, Any]) -> RuntimeAsset | None:
        """The installed asset, downloading it first if needed; None if no build matches."""
        name = str((asset.get("metadata") or {}).get("name") or "")
        build = await self._select(name, asset)
        if build is None:
            logger.info("no build of the asset matches this backend; not installing it", extra={"asset": name})
            return None
        if not build.url or len(build.sha512) < 128:
            raise AssetError(name, "the selected build has no url or no sha512")
        dest = self._root / build.sha512
        if await trio.to_thread.run_sync(dest.is_dir):
            self.stats["cache_hits"] += 1
            return RuntimeAsset(name, build.sha512, dest)
        lock = self._locks.setdefault(build.sha512, trio.Lock())
        async with lock:
            if not await trio.to_thread.run_sync(dest.is_dir):  # another task may have installed it meanwhile
                try:
                    await self._install(name, build, dest)
                except AssetError:
                    self.stats["failures"] += 1
                    raise
            else:
                self.stats["cache_hits"] += 1
        return RuntimeAsset(name, build.sha512, dest)

    async def js_scripts(self, assets: Sequence[RuntimeAsset]) -> list[str]:
        """The JavaScript libraries of filter assets: every ``lib/*.js``, sorted by file name."""
        out: list[str] = []
        for asset in assets:
            if asset.sha512 not in self._scripts:
                self._scripts[asset.sha512] = await trio.to_thread.run_sync(_read_js, asset.lib_dir)
            out.extend(self._scripts[asset.sha512])
        return out

    # ------------------------------------------------------------------ internals

    async def _select(self, name: str, asset: Mapping[str, Any]) -> _Build | None:
        key = json.dumps([asset.get("builds"), asset.get("url"), asset.get("sha512"), asset.get("filters"),
                          asset.get("headers")], sort_keys=True, default=str)
        if key in self._selected:
            return self._selected[key]
        if self._entity is None:
            await self.start()
        assert self._entity is not None
        env = build_entity_env(self._entity, time.time())
        passes = []
        for candidate in _candidates(asset):
            filters = [str(f) for f in candidate.get("filters") or ()]
            results = await self._js.eval_bools(filters, env) if filters else []
            passes.append(all(r is True for r in results))
        build = select_build(asset, passes)
        self._selected[key] = build
        return build

    async def _install(self, name: str, build: _Build, dest: Path) -> None:
        if self._bucket is None:
            self._bucket = _TokenBucket(self._rate, self._burst)
        await self._bucket.acquire()
        work = self._root / f".partial-{build.sha512[:16]}-{uuid.uuid4().hex}"
        archive = work / "archive"
        extra = {"asset": name, "url": build.url}
        try:
            await trio.to_thread.run_sync(lambda: work.mkdir(parents=True))
        except OSError as exc:
            raise AssetError(name, f"cannot write to the asset cache {self._root}: {exc.strerror or exc}") from None
        try:
            logger.info("downloading runtime asset", extra=extra)
            self.stats["downloads"] += 1
            digest = hashlib.sha512()
            started = time.perf_counter()
            try:
                async with httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True,
                                             verify=self._verify) as client:
                    # identity: the sha512 is of the file as published, not of a re-encoded transfer
                    headers = {"Accept-Encoding": "identity", **build.headers}
                    async with client.stream("GET", build.url, headers=headers) as response:
                        if response.status_code != 200:
                            raise AssetError(name, f"fetching {build.url}: HTTP {response.status_code}")
                        async with await trio.open_file(archive, "wb") as out:
                            async for chunk in response.aiter_bytes():
                                digest.update(chunk)
                                await out.write(chunk)
            except httpx.HTTPError as exc:
                raise AssetError(name, f"fetching {build.url}: {type(exc).__name__}: {exc}") from None
            self.durations["fetch"].observe(time.perf_counter() - started)
            got = digest.hexdigest()
            if got != build.sha512:
                raise AssetError(name, f"sha512 mismatch for {build.url}: expected {build.sha512[:16]}..., "
                                       f"got {got[:16]}...; not installed")
            started = time.perf_counter()
            await trio.to_thread.run_sync(_unpack, name, archive, work / "root")
            self.durations["expand"].observe(time.perf_counter() - started)
            await trio.to_thread.run_sync(os.rename, work / "root", dest)
            self.stats["installed"] += 1
            logger.info("runtime asset installed", extra={**extra, "path": str(dest)})
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))


def _unpack(name: str, archive: Path, target: Path) -> None:
    """Unpack a (compressed) tar archive into ``target``; raises :class:`AssetError`."""
    target.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AssetError(name, f"cannot unpack the archive (a tar file, optionally gzip/bzip2/xz "
                               f"compressed, is expected): {exc}") from None


def _read_js(lib_dir: Path) -> tuple[str, ...]:
    try:
        files = sorted(p for p in lib_dir.iterdir() if p.suffix == ".js" and p.is_file())
    except OSError:
        return ()
    return tuple(p.read_text(encoding="utf-8", errors="replace") for p in files)
