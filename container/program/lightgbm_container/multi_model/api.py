"""SageMaker's multi-model container API, as far as it is about the request itself:
the ``POST /models`` body and ``GET /models`` paging. No state here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ..errors import BadRequest
from .registry import Registered
from .usage import ModelUsage

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def parse_load_request(body: bytes) -> tuple[str, str]:
    """``{"model_name": ..., "url": ...}`` -> (name, url), or a 400 that shows the expected shape."""
    try:
        document = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or "model_name" not in document or "url" not in document:
        raise BadRequest('send {"model_name": "...", "url": "/opt/ml/models/.../model"}')
    name, url = document["model_name"], document["url"]
    if not isinstance(name, str) or not name:
        raise BadRequest('"model_name" must be a non-empty string')
    if not isinstance(url, str):
        raise BadRequest('"url" must be the path of the model directory or archive')
    return name, url


def described(registered: Registered, usage: ModelUsage | None) -> dict[str, Any]:
    """SageMaker's model description (``modelName``, ``modelUrl``) and, beyond it, what the model
    costs and how it is used: its measured size in one worker and over all of them, its load
    time, its requests, and its last use (SageMaker's own callers read only the first two)."""
    usage = usage or ModelUsage()
    return {
        **registered.entry.public(),
        "memoryBytes": registered.bytes,
        "memoryBytesAllWorkers": usage.bytes,
        "workerCopies": usage.copies,
        "compiledCopies": usage.compiled_copies,
        "loadSeconds": round(registered.entry.load_seconds, 6),
        "requests": usage.hits,
        "loadedAt": _timestamp(registered.entry.loaded_at),
        "lastUsed": _timestamp(max(registered.last_used, registered.entry.loaded_at)),  # mtimes lag a clock tick
    }


def _timestamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def page(
    names: Sequence[str],
    registered: Callable[[str], Registered | None],
    usage: Mapping[str, ModelUsage],
    token: str | None,
    limit: str | None,
) -> dict[str, Any]:
    """``GET /models``: ``names`` sorted; ``nextPageToken`` is the offset of the next page. Only
    the page's models are looked up (``registered``); one unloaded meanwhile is left out."""
    try:
        size = int(limit) if limit else DEFAULT_PAGE_SIZE
        start = int(token) if token else 0
    except ValueError:
        raise BadRequest("limit and next_page_token must be whole numbers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or start < 0:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE} and next_page_token >= 0")
    shown = [item for name in names[start : start + size] if (item := registered(name)) is not None]
    body: dict[str, Any] = {"models": [described(item, usage.get(item.entry.name)) for item in shown]}
    if start + size < len(names):
        body["nextPageToken"] = str(start + size)
    return body
