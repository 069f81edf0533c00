"""What a response style is (the registry: :mod:`.`).

A style decides, for one request, how the answer is laid out: which codec encodes it (which
type a missing Accept gets), which output kinds are computed when the request names none, the
encoder of the answer table, and the response's Content-Type. The answer path itself (decode,
validate, predict) is the same for every style: :meth:`..handler.LightGBMHandler.transform`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ... import codecs
from ...codecs.codec import Codec
from ...contract.handler import InferenceRequest
from ...model.outputs import Table
from ..output_selection import choose_outputs

Encoder = Callable[[Table], bytes]


@dataclass(frozen=True, slots=True)
class Reply:
    """How one request is answered: the kinds to compute (None: the default answer), the encoder
    of their table, the Content-Type, and the custom attributes to echo (None: none)."""

    kinds: tuple[str, ...] | None
    top_k: int | None
    encode: Encoder
    content_type: str
    echo: str | None = None


class AnsweringModel(Protocol):
    """What a style needs to know of the model that answers."""

    @property
    def kind(self) -> str: ...  # regression, binary, multiclass, ...

    @property
    def unavailable(self) -> Mapping[str, str]: ...  # output kinds it cannot answer, and why


@dataclass(frozen=True)
class ResponseStyle:
    name: str
    #: Media type -> the encoder that replaces the codec's own (the others keep the codec's layout).
    encoders: Mapping[str, Encoder] = field(default_factory=dict)

    def encoder(self, codec: Codec) -> Encoder:
        return self.encoders.get(codec.media_type, codec.encode)

    def reply(
        self,
        request: InferenceRequest,
        request_type: str,
        model: AnsweringModel,
        default_outputs: tuple[str, ...],
        default_accept: str | None,
    ) -> Reply:
        """The codecs' own layouts: a missing or ``*/*`` Accept answers in ``default_accept``
        (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT) when it is set, else in the request's own type;
        the kinds a request chose (custom attributes, ``;verbose``, ``SAGEMAKER_INFERENCE_OUTPUT``),
        else the default answer."""
        codec = codecs.response_codec(request.accept, default_accept or request_type)
        choice = choose_outputs(request.headers, request.accept, default_outputs)
        if choice is None:
            return Reply(None, None, self.encoder(codec), codec.media_type)
        return Reply(
            choice.for_model(model.kind, model.unavailable),
            choice.top_k,
            self.encoder(codec),
            codec.media_type,
            choice.echo,
        )


#: The codecs' own layouts (README: "Responses", "Choosing what a prediction returns").
STANDARD = ResponseStyle("standard")
