"""File names and size limits: the raw table a file name points to, the name an upload is
stored under, and the most bytes one file may hold once unzipped (MB of 2**20 bytes): the app's
upload limit, and a larger one for `ccrm ingest`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ccrm_core.foundation import store, validation
from ccrm_core.foundation.ingest.report import IngestError

FILE_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".gz", ".txt")
TABLE_ALIASES = {"customers": "src_customers"}  # file-name stems users naturally write
MAX_UPLOAD_MB = 200.0  # default limit on one uploaded file, MB (2**20 bytes); $CCRM_MAX_UPLOAD_MB
# default limit on one file `ccrm ingest` reads, MB once unzipped; $CCRM_MAX_INGEST_MB
MAX_INGEST_MB = 10_240.0
FILE_NAME_MAX = 255  # characters (and UTF-8 bytes) in an uploaded file's name, as file systems


def infer_table(file_name: str) -> str:
    """The raw table a file name points to: the longest contract table name (or alias) that
    starts the file's stem followed by a non-letter, e.g. `events.csv.gz`, `orders_2024.parquet`,
    `src_customers-crm.csv`. Raises IngestError when none matches."""
    base = Path(file_name).name
    stem = base.lower()
    for suffix in FILE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    candidates = {name: name for name in store.TABLES} | TABLE_ALIASES
    best = None
    for prefix, name in candidates.items():
        if stem.startswith(prefix) and (
            len(stem) == len(prefix) or not stem[len(prefix)].isalpha()
        ):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, name)
    if best is None:
        raise IngestError(
            f"{validation.label(base)}: cannot tell the table from the file name; name the file "
            f"after its table "
            f"(e.g. events.csv, orders_2024.parquet) or pass --table "
            f"({', '.join(store.TABLES)})"
        )
    return best[1]


@dataclass(frozen=True)
class SizeLimit:
    """The most bytes one file may hold once unzipped (a gzip file is counted as it unpacks, so
    a small file that expands enormously is refused early), and how a user changes it."""

    mb: float  # MB of 2**20 bytes
    what: str  # 'upload limit' or 'ingest limit'
    setting: str  # the environment variable that sets it
    advice: str  # what to do with a file above it

    @property
    def bytes(self) -> int:
        return int(self.mb * 2**20)

    def check(self, shown: str, size: int, verb: str = "is") -> None:
        """IngestError '<shown>: <verb> <size> MB, above the <what> of <mb> MB (<setting>);
        <advice>' when `size` bytes exceed the limit; `shown` is the file's name as messages
        show it (validation.label)."""
        if size > self.bytes:
            raise IngestError(
                f"{shown}: {verb} {size / 2**20:,.1f} MB, above the {self.what} of {self.mb:g} "
                f"MB ({self.setting}); {self.advice}"
            )


def max_upload_mb() -> float:
    """The largest file the app accepts as an upload, in MB (1 MB = 2**20 bytes), also once
    unzipped: the CCRM_MAX_UPLOAD_MB environment variable when set, else MAX_UPLOAD_MB (200).
    IngestError when the variable is not a positive number."""
    return _mb_setting("CCRM_MAX_UPLOAD_MB", MAX_UPLOAD_MB)


def max_ingest_mb() -> float:
    """The largest file `ccrm ingest` reads, in MB once unzipped: CCRM_MAX_INGEST_MB when set,
    else MAX_INGEST_MB (10,240). IngestError when the variable is not a positive number."""
    return _mb_setting("CCRM_MAX_INGEST_MB", MAX_INGEST_MB)


def upload_limit(mb: float | None = None) -> SizeLimit:
    """The size limit of a file uploaded in the app: `mb`, else CCRM_MAX_UPLOAD_MB."""
    return SizeLimit(
        max_upload_mb() if mb is None else mb,
        "upload limit",
        "CCRM_MAX_UPLOAD_MB",
        "split the file, or stop the app and load it with `ccrm ingest`",
    )


def ingest_limit() -> SizeLimit:
    """The size limit of a file `ccrm ingest` reads (CCRM_MAX_INGEST_MB)."""
    return SizeLimit(
        max_ingest_mb(),
        "ingest limit",
        "CCRM_MAX_INGEST_MB",
        "split the file, or raise CCRM_MAX_INGEST_MB",
    )


def _mb_setting(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        limit = float(raw)
    except ValueError:
        limit = float("nan")
    if not (limit > 0 and limit != float("inf")):
        raise IngestError(
            f"{variable} is {validation.quoted(raw)}; set it to a number of megabytes "
            f"above 0 (default {default:g}), or unset it"
        )
    return limit


def check_upload_size(name: str, size_bytes: int, limit_mb: float) -> None:
    """Refuse an upload larger than `limit_mb` MB (2**20 bytes) before anything is read or
    written: IngestError naming the file, its size and the limit."""
    upload_limit(limit_mb).check(validation.label(name), size_bytes)


def upload_file_name(name: str) -> str:
    """The name to store an upload under in our own folder: its last path component (so
    '../../etc/passwd.csv' stays inside the folder as 'passwd.csv'), checked by
    `validation.clean_name`. IngestError, naming the problem, for a name with control or
    invisible characters, longer than FILE_NAME_MAX characters or UTF-8 bytes, or no name."""
    base = re.split(r"[\\/]", name)[-1] if isinstance(name, str) else name
    if isinstance(base, str) and base.strip() in ("", ".", ".."):
        raise IngestError(f"{validation.quoted(name)}: has no file name; rename the file")
    try:
        clean = validation.clean_name(base, "file name", FILE_NAME_MAX, IngestError)
    except IngestError as exc:
        raise IngestError(f"{validation.quoted(name)}: {exc}") from None
    if len(clean.encode("utf-8")) > FILE_NAME_MAX:
        raise IngestError(
            f"{validation.quoted(name)}: file name is {len(clean.encode('utf-8')):,} bytes long "
            f"in UTF-8; use at most {FILE_NAME_MAX}; rename the file"
        )
    return clean
