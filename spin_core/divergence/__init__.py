"""Divergence to the data distribution: held-out samples, the exact KL (tiny world), the paper-scale
proxies, the tabular theory overlay and the convergence map."""
