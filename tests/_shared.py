"""Where the recorded corpora are: ``../shared/curves`` next to the clone (CI has it), or the
folder ``OPTUNA_SRP_CURVES`` names (a clone elsewhere); the tests that read them skip without."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


SHARED_CURVES = Path(
    os.environ.get("OPTUNA_SRP_CURVES")
    or Path(__file__).resolve().parents[1].parent / "shared" / "curves"
)
needs_shared_curves = pytest.mark.skipif(
    not SHARED_CURVES.is_dir(),
    reason=f"no recorded corpora at {SHARED_CURVES} (set OPTUNA_SRP_CURVES to their folder)",
)
