"""``python -m dfabench.cli``."""

import sys

from dfabench.cli import main

sys.exit(main())
