"""Tables, plots and claim checks over stage outputs (filled in by the evaluation and report stages)."""
