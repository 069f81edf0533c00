"""The ``context`` user code receives: Multi Model Server's ``Context``, as handlers know it.

Both contracts pass it: MMS custom services as ``handle(data, context)``, and toolkit
functions that take one more parameter than their data (``model_fn(model_dir, context)``).
The API is MMS's (both its older and newer method names), with two deliberate
differences: header lookups are case-insensitive (HTTP headers are), and each request gets
its own context, so request threads never see each other's headers or statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("user_code.metrics")

SERVER_VERSION = "1.1.11"  # the Multi Model Server release whose contract this follows


class RequestProcessor:
    """One request's headers, and what the handler says about its response."""

    def __init__(self, request_header: Mapping[str, str]) -> None:
        self._request_header = request_header
        self._status_code = 200
        self._reason_phrase: str | None = None
        self._response_header: dict[str, str] = {}

    def get_request_property(self, key: str) -> str | None:
        return _lookup(self._request_header, key)

    def get_request_properties(self) -> dict[str, str]:
        return dict(self._request_header.items())

    def report_status(self, code: int, reason_phrase: str | None = None) -> None:
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self) -> int:
        return self._status_code

    def get_response_status_phrase(self) -> str | None:
        return self._reason_phrase

    def add_response_property(self, key: str, value: str) -> None:
        self._response_header[key] = value

    def get_response_header(self) -> dict[str, str]:
        return self._response_header

    get_response_headers = get_response_header


def _lookup(headers: Mapping[str, str], key: str) -> str | None:
    value = headers.get(key)  # werkzeug's headers are case-insensitive already; a dict may not be
    if value is None:
        lowered = key.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


class Metrics:
    """MMS's metrics store: every call is accepted and logged at debug level."""

    def _record(self, kind: str, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        log.debug("metric %s %s=%s %s", kind, name, value, kwargs or "")

    def add_counter(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("counter", name, value, **kwargs)

    def add_time(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("time", name, value, **kwargs)

    def add_size(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("size", name, value, **kwargs)

    def add_percent(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("percent", name, value, **kwargs)

    def add_error(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("error", name, value, **kwargs)

    def add_metric(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._record("metric", name, value, **kwargs)


class Context:
    """MMS's ``Context``: what the server tells a handler about the model and the request."""

    def __init__(
        self,
        model_name: str,
        model_dir: Path | str,
        manifest: dict[str, Any] | None,
        batch_size: int = 1,
        gpu: int | None = None,
    ) -> None:
        self.model_name = model_name
        self.manifest = manifest
        self._system_properties = {
            "model_dir": str(model_dir),
            "gpu_id": gpu,
            "batch_size": batch_size,
            "server_name": "MMS",
            "server_version": SERVER_VERSION,
        }
        self.request_ids: dict[int, str] | None = None
        self.request_processor: list[RequestProcessor] | None = None
        self.metrics = Metrics()

    def for_request(self, request_id: str, headers: Mapping[str, str]) -> Context:
        """A copy of this (load-time) context for one request."""
        context = Context.__new__(Context)
        context.__dict__.update(self.__dict__)
        context.request_ids = {0: request_id}
        context.request_processor = [RequestProcessor(headers)]
        return context

    @property
    def system_properties(self) -> dict[str, Any]:
        return self._system_properties

    def _processor(self, idx: int) -> RequestProcessor | None:
        if self.request_processor is None or idx >= len(self.request_processor):
            return None
        return self.request_processor[idx]

    def get_request_id(self, idx: int = 0) -> str | None:
        return None if self.request_ids is None else self.request_ids.get(idx)

    def get_request_header(self, idx: int, key: str) -> str | None:
        processor = self._processor(idx)
        return None if processor is None else processor.get_request_property(key)

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        processor = self._processor(idx)
        return {} if processor is None else processor.get_request_properties()

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx: int) -> str | None:
        processor = self._processor(idx)
        return None if processor is None else processor.get_response_header().get("content-type")

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        processor = self._processor(idx)
        if processor is not None:
            processor.report_status(code, reason_phrase=phrase)

    set_http_response_status = set_response_status  # MMS's older name

    def set_all_response_status(self, code: int = 200, phrase: str = "") -> None:
        for idx in range(len(self.request_processor or [])):
            self.set_response_status(code, phrase, idx)

    def get_response_status(self, idx: int) -> tuple[int, str | None]:
        processor = self._processor(idx)
        return (
            (200, None)
            if processor is None
            else (processor.get_response_status_code(), processor.get_response_status_phrase())
        )

    get_http_response_status = get_response_status

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        processor = self._processor(idx)
        if processor is not None:
            processor.add_response_property(key, value)

    def get_response_headers(self, idx: int) -> dict[str, str]:
        processor = self._processor(idx)
        return {} if processor is None else processor.get_response_header()
