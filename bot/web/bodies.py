"""Request bodies read with a ceiling, for the routes that read their own (Slack's request URL,
MLflow's webhook). The REST API has its middleware (`bot.web.api.deps.BodyLimit`).

A body is refused as soon as it passes the limit, whether Content-Length announced it or it
arrives chunked (which announces nothing): a 200 MB upload costs at most the limit in memory.
"""

from __future__ import annotations

from fastapi import Request


async def read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes (the rest is never read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
