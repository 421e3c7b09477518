"""A chain job (map cell, recipe run): it reuses finished iterations only when its inputs are unchanged."""

import json

from spin_core.config import DivergenceConfig, GenerateConfig, MapConfig, SpinConfig
from spin_core.divergence.chain import inputs_stamp


def test_map_cell_inputs_stamp_changes_with_the_sft_model(tmp_path):
    """A convergence-map cell reuses finished iterations only when its inputs are unchanged."""
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "model.safetensors").write_bytes(b"weights-a")
    (tmp_path / "train.jsonl").write_text("{}\n")
    sections = (MapConfig(), SpinConfig(), GenerateConfig(), DivergenceConfig())
    files = (tmp_path / "sft", tmp_path / "train.jsonl", tmp_path / "train.jsonl")
    first = inputs_stamp([0.1, 1e-4, 1.0], sections, *files)
    assert inputs_stamp((0.1, 1e-4, 1.0), sections, *files) == first
    (tmp_path / "sft" / "model.safetensors").write_bytes(b"weights-b")
    assert inputs_stamp((0.1, 1e-4, 1.0), sections, *files) != first
    assert inputs_stamp((0.5, 1e-4, 1.0), sections, *files) != inputs_stamp((0.1, 1e-4, 1.0), sections, *files)
    # what is written to inputs.json reads back equal (else every rerun would start over)
    assert json.loads(json.dumps(first)) == first
