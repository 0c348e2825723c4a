"""handoff's ``MediaSource`` for Telegram: a voice note, photo or file fetched through the Bot API.

Why its own small HTTP client and not the running PTB application: the console may run without the
Telegram channel in the same process (``hamroh console``), and the two calls it needs are plain
HTTP: ``getFile`` gives a temporary path, ``/file/bot<token>/<path>`` gives the bytes. They are
streamed through to the counsellor's browser, never written to disk, and the token stays on the
server: neither the browser nor a log line ever sees it (errors name the failure, not the URL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from handoff import MediaFile, MediaUnavailable

from ._telegram_logging import protect_library_logs

__all__ = ["TelegramMediaSource"]

_TELEGRAM = "https://api.telegram.org/bot"
_CHUNK = 64 * 1024


class TelegramMediaSource:
    """Fetches files the bot received, by ``file_id``; ``base_url`` as for the Telegram application
    (``config.yml`` ``telegram.base_url``: another Bot API server, or the fake one in the tests)."""

    def __init__(self, token: str, *, base_url: str | None = None, timeout: float = 30.0) -> None:
        if not token:
            raise ValueError("the Telegram bot token is empty: set TELEGRAM_BOT_TOKEN")
        protect_library_logs(token)  # httpx logs request URLs, which carry the token
        api = (base_url or _TELEGRAM).rstrip("/")
        # Telegram serves files beside the methods: https://api.telegram.org/file/bot<token>/<path>
        files = api[: -len("/bot")] + "/file/bot" if api.endswith("/bot") else api + "/file/bot"
        self._methods = f"{api}{token}"
        self._files = f"{files}{token}"
        self._timeout = timeout

    async def fetch(self, file_id: str) -> MediaFile:
        client = httpx.AsyncClient(timeout=self._timeout)
        try:
            path, size = await self._path(client, file_id)
            response = await client.send(client.build_request("GET", f"{self._files}/{path}"), stream=True)
        except MediaUnavailable:
            await client.aclose()
            raise
        except httpx.HTTPError as exc:
            await client.aclose()
            raise MediaUnavailable(f"Telegram could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            await response.aclose()
            await client.aclose()
            raise MediaUnavailable(f"Telegram answered {response.status_code} for the file")
        length = response.headers.get("content-length")
        return MediaFile(self._chunks(client, response), int(length) if length and length.isdigit() else size)

    async def _path(self, client: httpx.AsyncClient, file_id: str) -> tuple[str, int | None]:
        response = await client.get(f"{self._methods}/getFile", params={"file_id": file_id})
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or not body.get("ok"):
            # e.g. "Bad Request: file is too big" or "wrong file_id": Telegram's words, no secret in them
            described = body.get("description") if isinstance(body, dict) else None
            raise MediaUnavailable(str(described or f"getFile answered {response.status_code}")[:200])
        result = body.get("result") or {}
        path = result.get("file_path")
        if not isinstance(path, str) or not path or path.startswith("/"):
            # an absolute path comes from a local Bot API server in --local mode: not reachable over HTTP
            raise MediaUnavailable("Telegram gave no download path for this file")
        size = result.get("file_size")
        return path, size if isinstance(size, int) else None

    @staticmethod
    async def _chunks(client: httpx.AsyncClient, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(_CHUNK):
                yield chunk
        finally:
            await response.aclose()
            await client.aclose()
