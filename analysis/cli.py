"""Report stage: `python -m analysis.cli tables|figures|map|recipes|long-horizon|study ...` (rules/report.smk calls these).
The command lines are generated from the functions' signatures, as spin_core.cli's are."""

from __future__ import annotations

import sys

from spin_core.cli import Command, main

COMMANDS = {
    "tables": Command("analysis.report:write_tables"),
    "figures": Command("analysis.report:write_figures"),
    "map": Command("analysis.report:gather_map"),
    "recipes": Command("analysis.report:gather_recipes"),
    "long-horizon": Command("analysis.report:gather_long_horizon"),
    "study": Command("analysis.report:gather_study"),
}

if __name__ == "__main__":
    sys.exit(main(commands=COMMANDS, prog="analysis"))
