"""The widget's static files, held in memory, gzip-compressed once, revalidated by ETag.

Why not ``StaticFiles``: a mount does not travel with an ``APIRouter``, and on 2G every byte
counts: the files are compressed once at start-up (the widget is ~4x smaller gzipped), and a
returning visitor gets a 304 instead of the script again. Only a fixed allow-list of file types
under ``bot/web`` is served (not the widget's sources in ``src``), so nothing else on disk is
reachable through this route.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StaticFile", "load_static"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def load_static(root: Path) -> dict[str, StaticFile]:
    """Every servable file under ``root`` by its relative POSIX path."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        media_type = _TYPES.get(path.suffix)
        if media_type is None or not path.is_file() or path.relative_to(root).parts[0] == "src":
            continue  # bot/web/src holds the widget's modules, built into hamroh-chat.js
        body = path.read_bytes()
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[path.relative_to(root).as_posix()] = StaticFile(
            body, packed if len(packed) < len(body) else None, media_type, etag)
    return files
