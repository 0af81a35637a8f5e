"""pytest/nbval settings for the notebooks (``make test-slow`` runs them with ``--nbval-lax``).

nbval executes each notebook with its *default* parameters, so this sets ``WSOL_SMOKE=1`` before any
kernel starts: the notebooks then train on the tiny smoke slice (see ``wsol_utils.ui.suite``) and write their
figures to ``outputs/smoke/figures``, never to the committed ``figures/``. Notebook items are marked
``slow`` (they train small models): ``make test`` and ``make test-fast`` skip them, ``make test-slow`` and
``make test-all`` (CI) run them.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WSOL_SMOKE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # nbval compares stderr too


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
