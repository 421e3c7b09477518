"""Every divergence measure of one model in one process, for the tiny world, where a job computes
for about a second and starting Python and torch costs three: held-out samples, the exact KL and the
proxies, written to the same files as the three separate paper-scale jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ..config import DivergenceConfig, EncodingConfig, GenerateConfig
from ..io import write_table
from .exact import exact_divergence
from .proxies import divergence_proxies
from .samples import sample_heldout


def measure_model(
    divergence: DivergenceConfig,
    generate: GenerateConfig,
    spin: EncodingConfig,
    model: Path,
    world: Path,
    test: Path,
    name: str,
    samples_out: Path,
    exact_out: Path,
    proxies_out: Path,
    per_prompt_out: Path,
    ref_model: Path | None = None,
    ref_samples: Path | None = None,
    beta: Annotated[float | None, "the real-vs-generated margin's beta (with --ref-model)"] = None,
) -> None:
    """Held-out samples, exact KL (with its per-prompt values) and proxies of one model (tiny world), in
    one job."""
    write_table(samples_out, sample_heldout(divergence, generate, spin, model, test))
    exact = exact_divergence(divergence, model, world, samples_out, name, per_prompt_out=per_prompt_out)
    write_table(exact_out, exact)
    proxies = divergence_proxies(divergence, spin, model, samples_out, test, name, ref_model, ref_samples, beta)
    write_table(proxies_out, proxies)
