"""The widget's static files: Starlette's ``StaticFiles``, narrowed to the widget and given its headers.

Why a subclass: an MRC website loads the script from another origin (``Access-Control-Allow-Origin:
*``, so ``fetch`` of the labels works too), browsers must not guess types (``nosniff``), and a
returning visitor on 2G should get a 304 for an hour-old copy, not the script again (``ETag`` and
``Cache-Control``). Only a fixed allow-list of file types under ``bot/web`` is served, never the
pages (they are built per request, with their CSP) nor the widget's sources in ``src`` (built into
``hamroh-chat.js``); ``StaticFiles`` itself refuses paths that leave the directory. The gzip for
2G (the widget is ~4x smaller) comes from ``GZipMiddleware`` around it (``static_app``).

The pages and the language list, which the server itself reads, are held in memory (``load_static``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

__all__ = ["StaticFile", "WidgetFiles", "load_static", "static_app"]

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HEADERS = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str


def load_static(root: Path) -> dict[str, StaticFile]:
    """Every file of an allowed type under ``root`` by its relative POSIX path (the server reads the
    pages and ``i18n/languages.json`` from here)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        media_type = _TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        files[path.relative_to(root).as_posix()] = StaticFile(path.read_bytes(), media_type)
    return files


class WidgetFiles(StaticFiles):
    """``StaticFiles`` for ``bot/web``: the widget's types only, with the headers an embed needs."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        parts = PurePosixPath(path.replace(os.sep, "/"))
        if parts.suffix not in _TYPES or parts.suffix == ".html" or parts.parts[:1] == ("src",):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_HEADERS)
        if response.status_code == 304:
            response.headers["Vary"] = "Accept-Encoding"  # GZipMiddleware says it only with a body
        else:
            response.headers["Content-Type"] = _TYPES[Path(full_path).suffix]
        return response


def static_app(root: Path) -> ASGIApp:
    """The app mounted at ``/static/web``: the files, gzip-compressed for clients that accept it
    (``GZipMiddleware`` also says ``Vary: Accept-Encoding``)."""
    return GZipMiddleware(WidgetFiles(directory=root), minimum_size=500)
