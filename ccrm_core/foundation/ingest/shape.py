"""One pass over a CSV file's bytes before DuckDB reads it: its size once unzipped (refused above
the size limit, counted while a gzip file unpacks, so a small file that expands enormously stops
early), its line breaks, whether it quotes any field, and whether a line reaches the line limit.
From these follows which of DuckDB's CSV readers can read the file exactly (`_Shape.parallel`).

Why the reader matters (measured on DuckDB 2.0.1): the parallel reader splits the file into a
region per thread. A record longer than a region (one line of about 31 MB, or a NUL run inside a
.gz) falls between two regions and, with store_rejects on, is dropped with no reject entry: not
loaded, not rejected, not counted. A quoted field of about 10 MB spanning many lines is cut up and
its inner lines are read as records. The single-threaded reader reads both right (the record is
rejected as longer than the line limit) but holds the whole file in memory. So the parallel
reader is used only when no record can reach the limit: the file has no quote character (every
line break then ends a record) and no line of LINE_LIMIT bytes or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccrm_core.foundation.ingest.checks import _open_bytes
from ccrm_core.foundation.ingest.names import SizeLimit

LINE_LIMIT = 2 << 20  # bytes in one record (DuckDB's max_line_size, passed to it explicitly)
_CHUNK = 1 << 24  # bytes read (or unzipped) at a time


@dataclass(frozen=True)
class _Shape:
    """What the pass found: line breaks (b'\\n') and whether the last byte is one, whether any
    field may be quoted, whether some line is LINE_LIMIT bytes or longer."""

    newlines: int
    ends_with_newline: bool
    quoted: bool
    long_line: bool

    @property
    def parallel(self) -> bool:
        """True when DuckDB's parallel reader reads this file exactly (see the module notes)."""
        return not (self.quoted or self.long_line)


def _shape(path: Path, compression: str, shown: str, limit: SizeLimit) -> _Shape:
    """One pass over the file's (unzipped) bytes; IngestError when they exceed `limit`."""
    if compression == "none":
        limit.check(shown, path.stat().st_size)
    size = newlines = run = 0
    quoted = long_line = False
    last = b""
    with _open_bytes(path, compression) as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            # stops at the first chunk past the limit: a gzip bomb is never unpacked further
            limit.check(shown, size, "unzips to at least" if compression == "gzip" else "is")
            newlines += chunk.count(b"\n")
            quoted = quoted or b'"' in chunk
            if not long_line:
                long_line, run = _long_line(chunk, run)
            last = chunk[-1:]
    return _Shape(newlines, last == b"\n", quoted, long_line)


def _long_line(chunk: bytes, run: int) -> tuple[bool, int]:
    """(whether a line of LINE_LIMIT bytes or more ends or continues in `chunk`, the length of
    the line still open at its end); `run` is the length of the line open before it. Looks for
    the last line break in each LINE_LIMIT-byte window, so it takes about len(chunk)/LINE_LIMIT
    steps however short the lines are."""
    first = chunk.find(b"\n")
    if first < 0:
        run += len(chunk)
        return run >= LINE_LIMIT, run
    if run + first >= LINE_LIMIT:
        return True, 0
    last = chunk.rfind(b"\n")
    start = first + 1
    while start <= last:
        end = chunk.rfind(b"\n", start, start + LINE_LIMIT)
        if end < 0:  # no line break within LINE_LIMIT bytes of a line's start
            return True, 0
        start = end + 1
    run = len(chunk) - last - 1
    return run >= LINE_LIMIT, run
