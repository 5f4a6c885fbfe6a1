"""`python -m tinykd.cli`: the tinykd command."""

import sys

from tinykd.cli import main

sys.exit(main())
