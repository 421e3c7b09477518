"""Downloading a data file (paper scale: FastChat's MT-Bench files) with a checksum."""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..io import atomic_path

log = logging.getLogger(__name__)


def fetch_verified(url: str, out: Path, sha256: str | None = None, timeout: float = 60) -> Path:
    """Download a file (atomically); if sha256 is given, a mismatch is an error and nothing is written."""
    out = Path(out)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
    except OSError as e:
        raise DataError(f"{url}: download failed ({e})") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256:
        raise DataError(f"{url}: sha256 {digest} does not match the configured {sha256}")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    log.info("fetched %s (%d bytes, sha256 %s) -> %s", url, len(data), digest, out)
    return out
