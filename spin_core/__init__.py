"""spin-repro core library: the tiny world, data contracts, SPIN loss, trainer, divergence."""

__version__ = "0.1.0"
