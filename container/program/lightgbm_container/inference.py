"""The request pipeline, identical for every route that predicts: decode -> validate -> predict -> encode."""

from __future__ import annotations

from dataclasses import dataclass

from . import codecs
from .errors import EmptyBody
from .model import LoadedModel


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str


def invoke(model: LoadedModel, body: bytes, content_type: str | None, accept: str | None, max_values: int) -> Answer:
    """Predict for every record in ``body``; one output record per input record, in order.

    ``max_values``: the most feature values a request may expand to (see ``LoadedModel.validate``)."""
    if not body or not body.strip():
        raise EmptyBody("the request body is empty; send one or more records (e.g. CSV rows of features)")
    decoder = codecs.request_codec(content_type, body)
    encoder = codecs.response_codec(accept, decoder)  # refuse a bad Accept before doing any work
    batch = decoder.decode(body)
    values = model.validate(batch, max_values)
    predictions = model.predict(values)
    return Answer(encoder.encode(predictions), encoder.media_type)
