"""The `/StreamingQuery/` UI page (HTML): the state of every query run, with no metrics or
listener needed."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from collectors.spark.parse.common import SparkParseError, UUID_PATTERN, clip_error


@dataclass(frozen=True, slots=True)
class UiQueryRow:
    name: str | None
    status: str  # RUNNING | FINISHED | FAILED (as the page shows it)
    query_id: str
    run_id: str
    start_time_text: str | None  # driver-local time as displayed; only used for ordering
    avg_input_rate: float | None
    avg_process_rate: float | None
    latest_batch: int | None
    error: str | None
    active: bool  # from the "active" table (else the "completed" table)


class _TableParser(HTMLParser):
    def __init__(self, table_ids: tuple[str, ...]):
        super().__init__(convert_charrefs=True)
        self.table_ids = table_ids
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self._table: str | None = None
        self._depth = 0
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            if self._table is not None:
                self._depth += 1
                return
            tid = dict(attrs).get("id")
            if tid in self.table_ids:
                self._table, self._depth = tid, 0
                self.tables[tid] = ([], [])
        elif self._table is None:
            return
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self._table is None:
            return
        if tag == "table":
            if self._depth:
                self._depth -= 1
            else:
                self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            heads, rows = self.tables[self._table]
            if tag == "th":
                heads.append(text)
            elif self._row is not None:
                self._row.append(text)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table][1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


_UI_COLUMNS = ("name", "status", "id", "run id", "start time", "duration", "avg input /sec",
               "avg process /sec", "latest batch", "error")


def _ui_column(header: str) -> str | None:
    h = " ".join(re.sub(r"[^a-z0-9/ ]", " ", header.lower()).split())
    for col in _UI_COLUMNS:
        if h == col or h.startswith(col + " "):
            return col
    return None


def _ui_float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        f = float(text.replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def parse_streaming_ui_html(html: str, *, source: str) -> tuple[UiQueryRow, ...]:
    """The Structured Streaming tab (`/StreamingQuery/`): active and completed query runs.

    Raises SparkParseError when the page has none of the expected tables and does not say
    there are no queries (i.e. it is not that page).
    """
    if not isinstance(html, str):
        raise SparkParseError(source, f"expected HTML text, got {type(html).__name__}")
    p = _TableParser(("active-table", "completed-table"))
    try:
        p.feed(html)
        p.close()
    except Exception as e:  # HTMLParser is lenient; this is belt and braces
        raise SparkParseError(source, f"unparseable HTML: {e}") from None
    if not p.tables:
        if "Streaming Quer" in html:
            return ()  # the page, with no queries yet
        raise SparkParseError(source, "not the Structured Streaming page (no query tables)")
    out = []
    for tid, (heads, rows) in p.tables.items():
        cols = [_ui_column(h) for h in heads]
        if "id" not in cols or "run id" not in cols:
            raise SparkParseError(source, f"{tid}: unexpected columns {heads!r}")
        for r_i, row in enumerate(rows):
            cells = dict(zip(cols, row))
            qid, run = cells.get("id", ""), cells.get("run id", "")
            if not re.fullmatch(UUID_PATTERN, qid or "") or not re.fullmatch(UUID_PATTERN, run or ""):
                raise SparkParseError(source, f"{tid} row {r_i}: bad query/run id {qid!r}/{run!r}")
            latest = cells.get("latest batch")
            err = (cells.get("error") or "").split(" +details", 1)[0].strip()
            out.append(UiQueryRow(
                name=cells.get("name") or None,
                status=(cells.get("status") or "").upper(),
                query_id=qid.lower(),
                run_id=run.lower(),
                start_time_text=cells.get("start time") or None,
                avg_input_rate=_ui_float(cells.get("avg input /sec")),
                avg_process_rate=_ui_float(cells.get("avg process /sec")),
                latest_batch=int(latest) if latest and latest.isdigit() else None,
                error=None if not err or err == "-" else clip_error(err),
                active=tid == "active-table",
            ))
    return tuple(out)
