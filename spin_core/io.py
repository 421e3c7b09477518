"""Atomic file and directory writes, and readers that report file and line on bad input."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from .errors import DataError

log = logging.getLogger(__name__)


def temp_glob(name: str = "*") -> str:
    """The glob of the temp siblings writing `name` makes (`.<name>.<random>.tmp[suffix]`; by default
    every output's): what a kill mid-write leaves, and what the next write of that output removes."""
    return f".{name}.*.tmp*"


def _remove_stale_temps(target: Path) -> None:
    """Drop temp siblings a killed earlier run left behind (one job writes a given output)."""
    for stale in target.parent.glob(temp_glob(target.name)):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    # Same directory as the target so os.replace is a rename on one filesystem (atomic).
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    # mkstemp makes the file private (0600); the output gets the mode a plain open() would give it,
    # so a results directory shared with a group stays readable.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


# Below this much space left, a failed write is taken to be a full disk.
NEARLY_FULL_BYTES = 16 * 2**20


def _space_left(path: Path) -> int | None:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def as_disk_full(error: BaseException, path: str | os.PathLike) -> BaseException:
    """`error` as OSError(ENOSPC) naming `path` when it came from a full disk, else `error` itself.

    torch.save reports a full disk as RuntimeError("unexpected pos 64 vs 0") and safetensors as its
    own error, neither with errno or path; the user would see a traceback that never says "No space
    left on device". Call it before cleaning up: removing the partial output frees the space again.
    """
    if isinstance(error, OSError) or not isinstance(error, Exception):
        return error
    left = _space_left(Path(path))
    if left is None or left >= NEARLY_FULL_BYTES:
        return error
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    full.__cause__ = error
    return full


@contextlib.contextmanager
def disk_full_named(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a write failure under `path` on a full disk as OSError(ENOSPC, path) (as_disk_full)."""
    try:
        yield
    except Exception as e:
        error = as_disk_full(e, path)
        if error is e:
            raise
        raise error from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    tmp = _tmp_sibling(target, suffix=target.suffix)
    try:
        with disk_full_named(target):  # inside the cleanup: it must look before the space is freed
            yield tmp
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def plain_modes(root: str | os.PathLike) -> None:
    """Every file under `root` gets the mode a plain open() gives (0666 less the umask, execute bits
    kept): some writers (safetensors) create theirs 0600, which a shared results folder cannot read."""
    mode = 0o666 & ~_umask()
    for f in Path(root).rglob("*"):
        if f.is_file() and not f.is_symlink():
            f.chmod(mode | (f.stat().st_mode & 0o111 & ~_umask()))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700, as os.mkdir would have made it
    try:
        with disk_full_named(target):  # inside the cleanup: it must look before the space is freed
            yield tmp
            plain_modes(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _finite(obj, where: str, bad: list[str]):
    """obj with every NaN or infinite float replaced by None (JSON null), their keys noted in `bad`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        bad.append(where or "/")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}/{k}", bad) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v, f"{where}[{i}]", bad) for i, v in enumerate(obj)]
    return obj


def write_json(path: str | os.PathLike, obj) -> None:
    """Strict JSON (NaN and infinities, which JSON does not have, are written as null and logged)."""
    bad: list[str] = []
    obj = _finite(obj, "", bad)
    if bad:
        log.warning("%s: %d value(s) not finite, written as null: %s", path, len(bad), ", ".join(bad[:5]))
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike):
    """A JSON file, with a DataError naming the file when it is missing or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSONL; a broken line raises DataError naming the file and line number."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{lineno}: invalid UTF-8 (byte {e.start + 1} of the line: {raw[e.start : e.start + 4]!r})"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def write_table(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write a DataFrame as parquet or CSV (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif path.suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            raise ValueError(f"unsupported table suffix: {path}")


def read_records(path: str | os.PathLike) -> list[dict]:
    """Read rows from .jsonl or .parquet as a list of dicts (nested lists become Python lists)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if path.suffix == ".parquet":
        if not path.exists():
            raise DataError(f"{path}: file not found")
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: cannot read parquet ({e})") from None
        return [_to_python(r) for r in df.to_dict(orient="records")]
    raise DataError(f"{path}: unsupported file type (expected .jsonl or .parquet)")


def _to_python(obj):
    # pyarrow hands nested columns back as numpy arrays; the contracts speak in lists and dicts.
    if isinstance(obj, dict):
        return {k: _to_python(v) for k, v in obj.items()}
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return _to_python(obj.tolist())
    if isinstance(obj, list):
        return [_to_python(v) for v in obj]
    return obj


def read_tables(inputs: list[Path]) -> pd.DataFrame:
    """Tidy tables (CSV or parquet, by suffix) concatenated into one frame."""
    frames = [pd.read_parquet(p) if Path(p).suffix == ".parquet" else pd.read_csv(p) for p in inputs]
    return pd.concat(frames, ignore_index=True)


def gather_tables(inputs: list[Path], out: Path) -> None:
    """Concatenate tidy tables (CSV or parquet, by suffix) into one file."""
    write_table(out, read_tables(inputs))
