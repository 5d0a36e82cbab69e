"""The notebooks' budgets: a reader's full setting, or a quick one for a first look.

Every notebook that trains writes its budget as ``EPOCHS = budget(full=10, quick=2)``, so both
numbers are on the page. With the environment variable ``SIMPLECNN_QUICK=1`` every notebook
takes the quick budget: useful on a slow machine, to see everything run before committing to
the full one.
"""

from __future__ import annotations

import os

#: Environment variable that selects the quick budgets.
QUICK_ENV = "SIMPLECNN_QUICK"


def is_quick() -> bool:
    """True when ``SIMPLECNN_QUICK`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def budget(full, quick):
    """``quick`` when ``SIMPLECNN_QUICK`` is set, else ``full`` (the reader's setting)."""
    return quick if is_quick() else full
