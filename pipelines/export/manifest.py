"""`manifest.json`: the export's period, version, execution and, per file, its data rows and sha256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.export.rows import ExportJob

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    rows: int  # data rows without the header (the workbook: all its sheets' data rows)
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_bytes(job: ExportJob, files: Mapping[str, FileEntry]) -> bytes:
    """The manifest's JSON, keys in the order DESIGN §11 gives them, files in the order written."""
    document = {
        "period": str(job.period),
        "version": job.version,
        "execution_id": job.execution_id,
        "files": {name: {"rows": entry.rows, "sha256": entry.sha256} for name, entry in files.items()},
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
