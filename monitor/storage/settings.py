"""The `history` section: where the history file is and how long what it keeps is kept."""
from __future__ import annotations

from pathlib import Path

from alerts.bounds import DAY, HOUR, seconds
from monitor.settings import Strict


class HistoryConfig(Strict):
    path: Path = Path("streamscope.db")
    retention_seconds: float = seconds(DAY, gt=0)
    downsample_after_seconds: float = seconds(HOUR, gt=0)
    downsample_step_seconds: float = seconds(60.0, gt=0, le=DAY)
    prune_interval_seconds: float = seconds(300.0, gt=0, le=DAY)
