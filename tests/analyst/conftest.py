"""Fixtures of the analyst tests (helpers live in analyst_fixtures.py, importable from the tests)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from analyst_fixtures import embedded, workspace  # noqa: E402

__all__ = ["embedded", "workspace"]
