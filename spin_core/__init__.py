"""spin-repro: SPIN iterations as a Snakemake workflow, with the tiny world whose p_data is exact.

Subpackages by concern: world/ (the tiny world), train/, generate/, evaluate/, divergence/; at the
top, what all of them share: config (typed sections), names (the workflow's vocabulary and paths),
data (the SFT and pairs contracts), modeling (model directories), io, stats, errors, cli.
"""

__version__ = "0.1.0"
