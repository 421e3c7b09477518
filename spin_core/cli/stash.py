"""Finished steps of a `spin-repro steps` job kept across a kill, so that its rerun does not redo them.

A job that runs several stages in one process (the tiny world's SPIN chain: an SFT model, then four
iterations) would otherwise lose all of them to one kill: Snakemake deletes every output of a job that
did not finish, before the rerun starts it again. So after each step the outputs it wrote (those of the
job's declared outputs that appeared or changed) are hard-linked into the stash, under a key, with a
manifest written last; a rerun whose step has the same key links them back and skips the step.

A step's key is the SHA-256 of what decides its result: the source of spin_core (a fixed bug is never
served from the stash), the contents of the job's inputs, the contents of the job's outputs that exist
when the step starts (the earlier steps' results), and the step's own command line. Hard links cost no
space while the outputs exist; the workflow drops a job's stash once the run has succeeded
(rules/hooks.smk), as it does for training checkpoints. Only the standard library is used here: this
runs before any stage is imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("spin_core")

MANIFEST = "manifest.json"  # written last: a step without one was not stashed whole


def _digest_tree(h, path: Path, label: str) -> None:
    """Feed a file or a folder (its files' relative names and bytes, sorted) into h; a missing path as
    such."""
    h.update(f"\0{label}\0".encode())
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"\0{f.relative_to(path).as_posix()}\0".encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    elif path.is_file():
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(b"\0missing\0")


def digest(paths: list[str]) -> str:
    """SHA-256 of the contents of paths (files or folders), in the order given."""
    h = hashlib.sha256()
    for p in paths:
        _digest_tree(h, Path(p), p)
    return h.hexdigest()


def code_digest() -> str:
    """SHA-256 of spin_core's Python source."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f"\0{f.relative_to(root).as_posix()}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def state(path: str) -> tuple[int, int] | None:
    """(inode, mtime in ns) of a path, None if missing: a step's outputs are the paths whose state it
    changed (our stages write by rename, so a rewritten file or folder has a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def _place(src: Path, dst: Path) -> None:
    """src (a file or a folder) at dst as hard links, replacing what was there."""
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=True)
    else:
        _link_or_copy(str(src), str(dst))


class Stash:
    """The stash of one job: root/<key>/ holds a step's outputs (0, 1, ... in manifest order)."""

    def __init__(self, root: str | os.PathLike, inputs: list[str], outputs: list[str]) -> None:
        self.root = Path(root)
        self.outputs = list(dict.fromkeys(outputs))
        self._base = hashlib.sha256(f"{code_digest()}\0{digest(list(inputs))}".encode()).hexdigest()

    def key(self, argv: list[str]) -> str:
        existing = [p for p in self.outputs if state(p) is not None]
        h = hashlib.sha256(self._base.encode())
        h.update(digest(existing).encode())
        h.update(json.dumps(argv).encode())
        return h.hexdigest()[:32]

    def states(self) -> dict[str, tuple[int, int] | None]:
        return {p: state(p) for p in self.outputs}

    def restore(self, key: str) -> list[str] | None:
        """Link a stashed step's outputs back into place; the paths, or None if the step is not stashed."""
        entry = self.root / key
        try:
            paths = json.loads((entry / MANIFEST).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not all((entry / str(i)).exists() for i in range(len(paths))):
            return None
        for i, p in enumerate(paths):
            _place(entry / str(i), Path(p))
        return paths

    def save(self, key: str, before: dict[str, tuple[int, int] | None]) -> list[str]:
        """Stash the outputs whose state changed since `before` (self.states() at the step's start)."""
        changed = [p for p in self.outputs if state(p) is not None and state(p) != before.get(p)]
        entry = self.root / key
        if entry.exists():
            shutil.rmtree(entry)
        entry.mkdir(parents=True)
        for i, p in enumerate(changed):
            _place(Path(p), entry / str(i))
        tmp = entry / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(changed))
        os.replace(tmp, entry / MANIFEST)
        return changed
