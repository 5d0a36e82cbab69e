"""``python -m cnnkit train|evaluate``: the command line (see :mod:`cnnkit.cli`)."""

import sys

from cnnkit.cli import main

sys.exit(main())
