"""Are two workflow runs' outputs the same? For refactors that must not change results.

    python scripts/compare_runs.py RUN_A RUN_B [--only PREFIX ...]

Compares every CSV, parquet, JSON and JSONL file under data/ and results/ of the two run directories
and prints one line per file that is not byte-identical, then a summary. Parquet files that differ in
bytes are compared again as tables (values, dtypes, column order) and reported as equal tables when
only the file's metadata differs. A few fields record when and how long, not what: wall-clock times
and throughputs in Trainer's log history, lm-eval's dates and environment dump, MT-Bench timestamps
and answer ids (uuids); and lm-eval writes its task files' absolute paths, which hold the run
directory. Those are masked (VOLATILE below; the run directory becomes <run>) and each masked file
says so. Exit status:
0 when everything compared equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

SUFFIXES = {".csv", ".parquet", ".json", ".jsonl"}
# JSON keys whose values are wall-clock facts, not results.
VOLATILE = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "date",
    "start_time",
    "end_time",
    "total_evaluation_time_seconds",
    "pretty_env_info",
    "git_hash",
    "tstamp",
    "answer_id",
    "upper_git_hash",
    "transformers_version",
    "lm_eval_version",
}


def _mask(obj):
    if isinstance(obj, dict):
        return {k: ("<masked>" if k in VOLATILE else _mask(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask(v) for v in obj]
    return obj


def _json_rows(path: Path, root: Path):
    # lm-eval records its task's data files by absolute path, which holds the run directory.
    text = path.read_text().replace(str(root.resolve()), "<run>")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def compare_file(a: Path, b: Path, root_a: Path, root_b: Path) -> str:
    """'identical', 'equal ...' (equal after masking or as tables), or 'DIFFERENT: ...'."""
    if a.read_bytes() == b.read_bytes():
        return "identical"
    if a.suffix == ".parquet":
        da, db = pd.read_parquet(a), pd.read_parquet(b)
        try:
            pd.testing.assert_frame_equal(da, db, check_exact=True)
            return "equal tables (parquet metadata differs)"
        except AssertionError as e:
            return "DIFFERENT: " + " ".join(str(e).split())[:300]
    if a.suffix in (".json", ".jsonl"):
        ra, rb = _json_rows(a, root_a), _json_rows(b, root_b)
        if _mask(ra) == _mask(rb):
            return "equal after masking wall-clock fields"
        return "DIFFERENT: " + _first_difference(_mask(ra), _mask(rb))
    if a.suffix == ".csv":
        da, db = pd.read_csv(a), pd.read_csv(b)
        diff = da.compare(db) if da.shape == db.shape and list(da.columns) == list(db.columns) else None
        where = f"{len(diff)} rows differ, e.g. {diff.head(3).to_dict()}" if diff is not None else "shape/columns"
        return "DIFFERENT: " + where[:300]
    return "DIFFERENT"


def _first_difference(a, b, where="") -> str:
    if type(a) is not type(b):
        return f"{where or '/'}: {a!r:.80} vs {b!r:.80}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}/{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or '/'}: {a!r:.80} vs {b!r:.80}"


def files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for top in ("data", "results")
        for p in (root / top).rglob("*")
        if p.is_file() and p.suffix in SUFFIXES and not any(part.startswith(".") for part in p.parts)
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--only", nargs="*", default=[], help="compare only paths starting with these prefixes")
    a = ap.parse_args()
    fa, fb = files(a.run_a), files(a.run_b)
    if a.only:
        fa = {f for f in fa if f.startswith(tuple(a.only))}
        fb = {f for f in fb if f.startswith(tuple(a.only))}
    counts: dict[str, int] = {}
    for rel in sorted(fa | fb):
        if rel not in fb or rel not in fa:
            verdict = f"DIFFERENT: only in {a.run_a if rel in fa else a.run_b}"
        else:
            verdict = compare_file(a.run_a / rel, a.run_b / rel, a.run_a, a.run_b)
        kind = verdict.split(":")[0].split(" (")[0]
        counts[kind] = counts.get(kind, 0) + 1
        if verdict != "identical":
            print(f"{rel}: {verdict}")
    print("summary: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 1 if any(k.startswith("DIFFERENT") for k in counts) else 0


if __name__ == "__main__":
    sys.exit(main())
