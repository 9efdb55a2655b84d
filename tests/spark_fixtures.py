"""Where the real captured Spark responses are (../shared/fixtures/spark-4.3.0 beside the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _fixtures_dir() -> Path | None:
    roots = []
    if os.environ.get("STREAMSCOPE_FIXTURES"):
        roots.append(Path(os.environ["STREAMSCOPE_FIXTURES"]))
    roots.append(Path(__file__).resolve().parents[1].parent / "shared" / "fixtures")
    for root in roots:
        for d in (root / "spark-4.3.0", root):
            if (d / "ss_applications.json").is_file():
                return d
    return None


def spark_fixtures() -> Path:
    """The fixture folder; a module-level skip outside CI (a failure in CI) when it is missing."""
    found = _fixtures_dir()
    if found is None:
        msg = ("Spark fixtures not found: set STREAMSCOPE_FIXTURES or provide "
               "../shared/fixtures/spark-4.3.0 next to the repository")
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(msg + " (CI is set, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(msg + " (skipped outside CI)", allow_module_level=True)
    return found
