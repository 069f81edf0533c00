"""A Multi Model Server custom service (``handle(data, context)``) as a handler.

As MMS loads one: if the module has the entry function (``handle``, or the one the handler
names after a colon), it is called once at load as ``handle(None, context)`` and then per
request; otherwise the module must define exactly one class, which is instantiated without
arguments, ``initialize(context)`` once, ``handle(data, context)`` per request.

``data`` is the list MMS builds: one item per request, ``{"body": ...}`` plus the query
parameters (as bytes); with ``MMS_DECODE_INPUT_REQUEST`` (default true, as in MMS) a JSON
body arrives parsed and a ``text/*`` body as ``str``, otherwise bytes. The handler returns a
list with one item per request: bytes, a string, or a JSON-serialisable value.

Deliberate differences from MMS, all about failures: an exception in ``initialize`` (or
the function's first call) leaves ``/ping`` answering 503 with the reason (MMS logs it and
keeps answering 200); a handler that raises answers 500 with a JSON body naming the
exception (MMS: 503 "Prediction failed"), or the status a ``PredictionException`` carries;
a return value that breaks the contract answers 500 explaining the contract.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from ..contract.handler import InferenceRequest, InferenceResponse
from ..contract.negotiation import base_media_type, user_code_accept
from ..errors import BadRequest, UserCodeError, UserCodeSetupError
from .calls import UserFunction
from .context import Context
from .results import to_response


class ContractBroken(Exception):
    """The handler's return value is not one item per request."""


class CustomServiceHandler:
    reads_in_pieces = False  # user code gets the whole body, as the toolkit and MMS give it

    def __init__(
        self, module: ModuleType, function: str, context: Context, decode_input: bool, default_accept: str
    ) -> None:
        self.context = context
        self.decode_input = decode_input
        self.default_accept = default_accept
        where = getattr(module, "__file__", module.__name__)
        entry = getattr(module, function, None)
        if entry is not None:
            self.description = f"MMS custom service {where}:{function}"
            self._initialize: UserFunction | None = None
            self._entry_point = UserFunction("handle", entry, takes_context=False, is_user=True)
            self._is_function = True
            return
        classes = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__]
        if len(classes) != 1:
            raise UserCodeSetupError(
                f"{where}: expected a function {function}(data, context) or exactly one class with "
                f"initialize(context) and handle(data, context); found {len(classes)} classes"
            )
        service: Any = classes[0]()
        missing = [name for name in ("initialize", "handle") if not callable(getattr(service, name, None))]
        if missing:
            raise UserCodeSetupError(f"{where}: class {classes[0].__name__} has no {' and no '.join(missing)} method")
        self.description = f"MMS custom service {where}:{classes[0].__name__}"
        self._initialize = UserFunction("initialize", service.initialize, takes_context=False, is_user=True)
        self._entry_point = UserFunction("handle", service.handle, takes_context=False, is_user=True)
        self._is_function = False

    def load(self, model_dir: Path) -> Any:
        if self._initialize is not None:
            self._initialize(None, self.context)
        else:
            self._entry_point(None, None, self.context)  # MMS's initialisation call: handle(None, context)
        return self._entry_point

    def transform(self, model: Any, request: InferenceRequest) -> InferenceResponse:
        context = self.context.for_request(request.request_id, request.headers)
        item: dict[str, Any] = {
            key: value.encode()
            for key, value in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        }
        item["body"] = self._body(request)
        result = self._entry_point(None, [item], context)
        if not isinstance(result, list) or len(result) != 1:
            got = f"a list of {len(result)}" if isinstance(result, list) else type(result).__name__
            raise UserCodeError(
                "handle",
                ContractBroken(
                    f"a custom service must return a list with one item per request in data (here 1), got {got}"
                ),
            )
        status, _ = context.get_response_status(0)
        _, answer_type = user_code_accept(request.accept, self.default_accept)
        return to_response(result[0], answer_type, status, context.get_response_headers(0))

    def _body(self, request: InferenceRequest) -> Any:
        media_type = base_media_type(request.content_type)
        if not self.decode_input:
            return request.body
        try:
            if media_type == "application/json":
                return json.loads(request.body)
            if media_type.startswith("text/"):
                return request.body.decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"the body does not match its Content-Type {media_type} ({exc}); custom services receive JSON "
                "and text bodies decoded (MMS_DECODE_INPUT_REQUEST=false hands them over as bytes)"
            ) from None
        return request.body
