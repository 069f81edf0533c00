"""SageMaker's multi-model container API, as far as it is about the request itself:
the ``POST /models`` body and ``GET /models`` paging. No state here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import BadRequest
from .registry import Entry

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


def page(entries: Sequence[Entry], token: str | None, limit: str | None) -> dict[str, Any]:
    """``GET /models``: sorted by name; ``nextPageToken`` is the offset of the next page."""
    try:
        size = int(limit) if limit else DEFAULT_PAGE_SIZE
        start = int(token) if token else 0
    except ValueError:
        raise BadRequest("limit and next_page_token must be whole numbers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or start < 0:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE} and next_page_token >= 0")
    ordered = sorted(entries, key=lambda e: e.name)
    body: dict[str, Any] = {"models": [entry.public() for entry in ordered[start : start + size]]}
    if start + size < len(ordered):
        body["nextPageToken"] = str(start + size)
    return body
