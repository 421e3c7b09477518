"""Profiles parse and say what they should (the SLURM run itself needs a cluster)."""

import yaml

from tests.helpers.workflow import ROOT


def test_slurm_profile_uses_the_slurm_executor():
    cfg = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert cfg["executor"] == "slurm"
    assert cfg["rerun-incomplete"] is True and cfg["latency-wait"] >= 60
    assert {"mem_mb", "runtime"} <= set(cfg["default-resources"])


def test_default_workflow_profile_reruns_incomplete_jobs():
    cfg = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert cfg["rerun-incomplete"] is True
