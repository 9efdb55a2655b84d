"""Where the real captured Spark responses are: tests/fixtures/spark (see its README.md)."""
from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spark"


def spark_fixtures() -> Path:
    """The fixture folder, which is part of the repository."""
    if not (FIXTURES / "ss_applications.json").is_file():
        raise FileNotFoundError(f"Spark fixtures missing from the checkout: {FIXTURES}")
    return FIXTURES
