"""Sampling y' from the previous iterate: the backends (HF generate, vLLM) and the pairs shards."""
