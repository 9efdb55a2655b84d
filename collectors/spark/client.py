"""The only place the Spark collector does network I/O: bounded HTTP GETs with `requests`.

`SparkHttpClient.get` never raises for network or HTTP problems: it returns a `FetchResult`
carrying the status, the body text, when the fetch returned, how long it took and a classified
error ("refused", "timeout", "connection", "too_large"). Timeouts are (connect, read) per request
plus a total deadline while reading the body, so a slow-dripping server cannot hold a cycle.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from collectors.spark.defaults import DEFAULT_TIMEOUT
from collectors.urls import redact_url

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 32 * 1024 * 1024

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # as requested, with the query string, credentials redacted
    status: int | None  # HTTP status; None when no response arrived
    text: str | None
    fetched_at: float  # when the fetch returned (or failed)
    duration_seconds: float
    error: str | None = None  # transport-level problem; None when a response was read
    error_kind: str | None = None  # refused | timeout | connection | too_large | other
    content_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def unreachable(self) -> bool:
        """No HTTP answer at all (the host/port did not respond usefully)."""
        return self.error_kind in ("refused", "timeout", "connection")

    def describe(self) -> str:
        """One-line description of what went wrong (for SourceStatus.error)."""
        if self.error:
            return self.error
        if self.status is not None and not (200 <= self.status < 300):
            body = " ".join((self.text or "").split())[:120]
            return f"HTTP {self.status} from {self.url}" + (f": {body}" if body else "")
        return "ok"


def _classify(exc: BaseException) -> str:
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc).lower()
        if "refused" in text or "errno 111" in text or "actively refused" in text:
            return "refused"
        if "timed out" in text or "timeout" in text:
            return "timeout"
        return "connection"
    return "other"


class SparkHttpClient:
    """Thread-safe enough for concurrent GETs from a small pool (urllib3's pool is)."""

    def __init__(
        self,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
        pool_size: int = 8,
        total_timeout: float | None = None,
    ):
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.total_timeout = total_timeout if total_timeout is not None else sum(self.timeout) * 2
        self.max_bytes = max_bytes
        self._clock = clock
        self._own_session = session is None
        if session is None:
            # `requests` loads with the first client: a monitor without Spark targets never loads
            # it (5.5 MB, docs/performance.md)
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=max(4, pool_size), max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = "streamscope-spark-collector"
            session.max_redirects = 5
        self.session = session
        self.requests_total = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def get(self, url: str, params: Params = None, *,
            timeout: tuple[float, float] | None = None,
            allow_redirects: bool = True) -> FetchResult:
        import requests

        timeout = timeout or self.timeout
        shown = redact_url(url)
        if params:
            req = requests.Request("GET", url, params=params).prepare()
            shown = redact_url(req.url or url)
        start = time.monotonic()
        with self._lock:
            self.requests_total += 1
        try:
            resp = self.session.get(url, params=params, timeout=timeout, stream=True,
                                    allow_redirects=allow_redirects)
        except requests.exceptions.RequestException as e:
            kind = _classify(e)
            reason = {"refused": "connection refused", "timeout": "timed out",
                      "connection": "connection failed"}.get(kind, type(e).__name__)
            msg = f"{reason}: GET {shown} (timeout connect {timeout[0]:g}s, read {timeout[1]:g}s)"
            log.debug("spark fetch failed: %s (%s)", msg, e)
            return FetchResult(url=shown, status=None, text=None, fetched_at=self._clock(),
                               duration_seconds=time.monotonic() - start, error=msg,
                               error_kind=kind)
        try:
            chunks, size = [], 0
            deadline = start + self.total_timeout
            for chunk in resp.iter_content(chunk_size=65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    return FetchResult(
                        url=shown, status=resp.status_code, text=None, fetched_at=self._clock(),
                        duration_seconds=time.monotonic() - start,
                        error=f"response larger than {self.max_bytes} bytes: GET {shown}",
                        error_kind="too_large")
                if time.monotonic() > deadline:
                    return FetchResult(
                        url=shown, status=resp.status_code, text=None, fetched_at=self._clock(),
                        duration_seconds=time.monotonic() - start,
                        error=f"timed out reading the body after {self.total_timeout:g}s: GET {shown}",
                        error_kind="timeout")
            body = b"".join(chunks)
        except requests.exceptions.RequestException as e:
            kind = _classify(e)
            return FetchResult(url=shown, status=resp.status_code, text=None,
                               fetched_at=self._clock(), duration_seconds=time.monotonic() - start,
                               error=f"failed reading the body ({type(e).__name__}): GET {shown}",
                               error_kind="timeout" if kind == "timeout" else "connection")
        finally:
            resp.close()
        encoding = resp.encoding if resp.encoding and "json" not in (
            resp.headers.get("Content-Type") or "") else "utf-8"
        try:
            text = body.decode(encoding or "utf-8", errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        return FetchResult(url=shown, status=resp.status_code, text=text, fetched_at=self._clock(),
                           duration_seconds=time.monotonic() - start,
                           content_type=resp.headers.get("Content-Type"))
