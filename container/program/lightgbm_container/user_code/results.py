"""What user code returns, as an HTTP response (the toolkit's and MMS's rules)."""

from __future__ import annotations

import json
from typing import Any

from ..contract.handler import InferenceResponse


def to_response(
    result: Any, content_type: str, status: int = 200, headers: dict[str, str] | None = None
) -> InferenceResponse:
    """``(body, content type)``, bytes, str, a Flask/werkzeug ``Response``, or any JSON-serialisable
    value (MMS writes those with ``json.dumps(indent=2)``).

    The content type: a tuple's, else one the handler set on the context (``headers``), else
    ``content_type`` (the Accept the toolkit answers with)."""
    headers = dict(headers or {})
    for key in [key for key in headers if key.lower() == "content-type"]:
        content_type = headers.pop(key)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
    if hasattr(result, "get_data") and hasattr(
        result, "status_code"
    ):  # a Response from an sklearn/XGBoost-style output_fn
        passed = {
            key: value for key, value in result.headers.items() if key.lower() not in ("content-length", "content-type")
        }
        return InferenceResponse(
            result.get_data(), result.headers.get("Content-Type", content_type), result.status_code, passed
        )
    if isinstance(result, str):
        body = result.encode()
    elif isinstance(result, (bytes, bytearray, memoryview)):
        body = bytes(result)
    else:
        body = json.dumps(result, indent=2, default=_plain).encode()
    return InferenceResponse(body, content_type, status, headers)


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None:
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable; return bytes, a string or (body, content_type)")
