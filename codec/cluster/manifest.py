"""DST/manifest.parquet: one row per input, and the journal that makes a killed run resumable.

While a run goes, each finished file is appended to ``DST/.manifest.journal.jsonl`` (flushed and
fsynced per batch); at the end the old manifest, the journal and the new rows are merged into
manifest.parquet (written atomically) and the journal is removed. A run that was killed leaves
the journal, which the next run reads back: nothing it records is done twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ldmz.codec.cluster import require

MANIFEST = "manifest.parquet"
JOURNAL = ".manifest.journal.jsonl"

# column -> pyarrow type name; the order is the file's column order
COLUMNS: dict[str, str] = {
    "path": "string",          # input path relative to its SRC (POSIX)
    "output": "string",        # .ldmz path relative to DST
    "source_bytes": "int64",   # input size and mtime: a changed input is encoded again
    "source_mtime_ns": "int64",
    "duration": "float64",     # seconds of audio
    "channels": "int32",
    "sample_rate": "int32",
    "frames": "int64",         # latent frames (the dataset reader needs no header read)
    "model_id": "string",
    "model_revision": "string",
    "weights_sha256": "string",
    "coding": "string",        # the file's quantizer: "affine" or "rans" (entropy-coded)
    "bits": "int32",           # affine: requested bits of the widest latent channel, else 0
    "quality": "int32",        # rans: the quality level of the model's tables, else -1
    "kbps": "float64",         # output bits per second of audio
    "bytes": "int64",          # output size
    "sha256": "string",        # SHA-256 of the output file
    "settings": "string",      # JSON of the encode settings; other settings -> not a match
    "status": "string",        # "ok" or "error"
    "error": "string",         # one line for a bad input, else ""
}


def _schema():  # noqa: ANN202 - pyarrow.Schema
    pa = require("pyarrow", "the dataset manifest")
    return pa.schema([(k, getattr(pa, v)()) for k, v in COLUMNS.items()])


def blank(**values: object) -> dict:
    """A manifest row with every column (zeros and empty strings) updated by ``values``."""
    row: dict[str, object] = {
        k: (0.0 if v == "float64" else 0 if v.startswith("int") else "")
        for k, v in COLUMNS.items()}
    row.update({k: v for k, v in values.items() if k in COLUMNS})
    return row


def load(dst: Path) -> dict[str, dict]:
    """Rows by input path: manifest.parquet, then the journal a killed run left (newer wins)."""
    rows: dict[str, dict] = {}
    if (dst / MANIFEST).is_file():
        pq = require("pyarrow.parquet", "the dataset manifest")
        for r in pq.read_table(dst / MANIFEST).to_pylist():
            rows[r["path"]] = blank(**r)
    if (dst / JOURNAL).is_file():
        with open(dst / JOURNAL, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:  # the line a kill cut short
                    continue
                if isinstance(r, dict) and "path" in r:
                    rows[r["path"]] = blank(**r)
    return rows


class Journal:
    """Append-only record of finished rows, durable per :meth:`append` call."""

    def __init__(self, dst: Path) -> None:
        self.path = dst / JOURNAL
        self.f = open(self.path, "a", encoding="utf-8")  # closed in close()

    def append(self, rows: Iterable[Mapping]) -> None:
        """Write ``rows`` (manifest columns only) and fsync."""
        text = "".join(json.dumps({k: r[k] for k in COLUMNS}) + "\n" for r in rows)
        if text:
            self.f.write(text)
            self.f.flush()
            os.fsync(self.f.fileno())

    def close(self, remove: bool = False) -> None:
        """Close; ``remove`` once the manifest holds everything the journal did."""
        self.f.close()
        if remove:
            self.path.unlink(missing_ok=True)


def save(dst: Path, rows: Mapping[str, Mapping]) -> Path:
    """Write every row, sorted by path, to DST/manifest.parquet atomically."""
    pa = require("pyarrow", "the dataset manifest")
    pq = require("pyarrow.parquet", "the dataset manifest")
    ordered = [blank(**rows[k]) for k in sorted(rows)]
    table = pa.Table.from_pylist(ordered, schema=_schema())
    out = dst / MANIFEST
    tmp = dst / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
