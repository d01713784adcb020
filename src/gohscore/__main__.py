"""Allow ``python -m gohscore``."""

import sys

from gohscore.cli import main

sys.exit(main())
