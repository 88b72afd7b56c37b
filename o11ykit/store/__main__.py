"""`python -m o11ykit.store serve ...`: the same as `o11ykit store serve ...`."""

import sys

from o11ykit.cli import store_main

sys.exit(store_main(["store", *sys.argv[1:]]))
