"""Server time per page run, for load tests and benchmarks (not for users).

With CCRM_TIMING=1 every script run (a page visit, a widget change, a rerun) writes one line
to standard error: `ccrm-timing {"page": ..., "seconds": ..., "ended": ...}`, the seconds the
server spent running the page's script, from its first line to its last, whether it ended
normally, stopped early (`st.stop`) or asked for a rerun. CCRM_TIMING_FILE=PATH appends the same
JSON lines to PATH instead. Without CCRM_TIMING the app measures nothing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PREFIX = "ccrm-timing "
_write_lock = threading.Lock()  # sessions run on threads of their own


def enabled() -> bool:
    return os.environ.get("CCRM_TIMING") == "1"


@contextmanager
def page_run(page: str) -> Iterator[None]:
    """Time the body (one run of a page's script) and record it when timing is on."""
    if not enabled():
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        record = {
            "page": page,
            "seconds": round(time.perf_counter() - started, 4),
            "ended": round(time.time(), 3),
        }
        _write(json.dumps(record))


def _write(line: str) -> None:
    path = os.environ.get("CCRM_TIMING_FILE")
    with _write_lock:
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        else:
            sys.stderr.write(PREFIX + line + "\n")
            sys.stderr.flush()
