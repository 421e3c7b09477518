"""The tiny world: a synthetic language with an exact p_data(y|x), its word-level tokenizer, SFT data
sampled from it, and the evaluation tasks and oracles whose answer keys come from p_data."""
