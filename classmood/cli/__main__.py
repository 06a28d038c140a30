"""``python -m classmood.cli``."""

import sys

from classmood.cli import main

sys.exit(main())
