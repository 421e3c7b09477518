"""Evaluation per model: lm-eval tasks (Open LLM Leaderboard, Big-Bench), MT-Bench in FastChat's
formats with a pluggable judge, the checksummed download of FastChat's files, and scores.csv."""
