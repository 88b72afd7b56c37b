"""`python -m o11ykit.store serve ...`: the same as `o11ykit store serve ...`."""

import sys

from o11ykit.cli import main

sys.exit(main(["store", *sys.argv[1:]]))
