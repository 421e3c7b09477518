"""`python -m spin_core.cli <command> ...`: what the workflow's rules run."""

import sys

from . import main

sys.exit(main())
