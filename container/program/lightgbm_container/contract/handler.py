"""The unit a model store holds and a route calls: a handler loads a model and answers requests.

Every way of serving goes through this one contract: the built-in LightGBM behaviour
(:mod:`..builtin`), a SageMaker Inference Toolkit ``inference.py`` and an MMS custom
service (:mod:`..user_code`). A store keeps ``(handler, model)`` pairs, so single-model,
multi-model and user code share one request path:

    route -> store.model_for(target) -> handler.transform(model, request) -> response

A new way of serving (another toolkit's contract) is one more :class:`Handler`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, NamedTuple, Protocol

from ..observability import request_ids


@dataclass(frozen=True)
class BodyStream:
    """A large request body still to be read (an asynchronous inference's can be 1 GB): the
    handlers that can read it in pieces (:attr:`Handler.reads_in_pieces`) get this instead of bytes."""

    read: Callable[[int], bytes]  # at most that many bytes; b"" at the end
    length: int  # Content-Length
    piece_bytes: int  # how much to read at a time

    def chunks(self) -> Iterator[bytes]:
        return iter(partial(self.read, self.piece_bytes), b"")


@dataclass(frozen=True)
class InferenceRequest:
    """What a handler sees of one HTTP request."""

    body: bytes  # b"" when the body is a ``stream``
    content_type: str | None  # the raw header, parameters included (the toolkit passes it on verbatim)
    accept: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive in the app (werkzeug's Headers)
    query_string: bytes = b""  # raw; only MMS custom services look at it (their data carries the parameters)
    stream: BodyStream | None = None  # a large body, for a handler that reads it in pieces

    @property
    def request_id(self) -> str:
        """The request's id (made on first use when the caller sent none: most requests never need one)."""
        return request_ids.current()


class StepTimes(NamedTuple):
    """Seconds one request spent in each step, and its rows when known: a handler measures,
    the app records them with the rest of the request's metrics (one update per request)."""

    decode: float
    predict: float
    encode: float
    rows: int | None


class StepTimer:
    """The one way a handler times its steps: start it, mark the end of decoding and of
    predicting, then :meth:`steps` closes the encoding step."""

    __slots__ = ("_decoded", "_predicted", "_started")

    def __init__(self) -> None:
        self._started = perf_counter()
        self._decoded = self._predicted = self._started

    def decoded(self) -> None:
        self._decoded = perf_counter()

    def predicted(self) -> None:
        self._predicted = perf_counter()

    def steps(self, rows: int | None) -> StepTimes:
        return StepTimes(
            self._decoded - self._started, self._predicted - self._decoded, perf_counter() - self._predicted, rows
        )


@dataclass
class InferenceResponse:
    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    steps: StepTimes | None = None  # None: the handler could not tell the steps apart (a transform_fn)


class Handler(Protocol):
    """Loads a model directory once per worker, then turns requests into responses."""

    #: How the log and ``/ping`` describe this handler ("built-in LightGBM", "inference.py", ...).
    description: str
    #: Whether ``transform`` reads a large body in pieces (:class:`BodyStream`): else it gets bytes.
    reads_in_pieces: bool

    def load(self, model_dir: Path) -> Any:
        """The served model (anything the handler's ``transform`` understands)."""
        ...

    def transform(self, model: Any, request: InferenceRequest) -> InferenceResponse:
        """One response for one request: 4xx errors as :class:`~..errors.ServingError`."""
        ...


@dataclass(frozen=True)
class Served:
    """A loaded model together with the handler that answers for it."""

    handler: Handler
    model: Any

    def transform(self, request: InferenceRequest) -> InferenceResponse:
        return self.handler.transform(self.model, request)

    @property
    def reads_in_pieces(self) -> bool:
        return self.handler.reads_in_pieces
