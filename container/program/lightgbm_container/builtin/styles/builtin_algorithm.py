"""The answers of SageMaker's built-in LightGBM algorithm, for clients written against it.

As the built-in's inference script (JumpStart classification v1.2.2, regression v1.2.1)
answers on the SageMaker Inference Toolkit, and as its users' notebooks parse it:

- JSON, also when no Accept or ``*/*`` is sent (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when
  set, as the toolkit);
- a classifier: ``{"probabilities-1d": ..., "probabilities": [[p0, p1, ...], ...]}``, where
  ``probabilities-1d`` is every class's probability but the first (binary: ``[[p1], ...]``);
- ``Accept: application/json;verbose`` adds ``"predicted_label": [i, ...]``, the index of the
  most probable class (the lower on a tie), as theirs: an index, which is the label itself
  when the labels were 0..K-1, as the built-in's training requires;
- any other model: ``{"prediction": [...]}``;
- the Content-Type of a JSON answer is the Accept as sent (``application/json;verbose``).

Beyond theirs, by design: every request type we decode is taken (theirs: ``text/csv`` only,
else 500); Accept CSV, JSON Lines or NPY answer the same kinds in our standard layout (theirs:
a 500, or a pickled dict in NPY); custom attributes ``output=...`` choose kinds in the
standard layout (theirs ignore them).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import orjson

from ... import codecs
from ...contract.handler import InferenceRequest
from ...contract.negotiation import base_media_type
from ...model.conventions import BUILTIN_ALGORITHM
from ...model.outputs import Table
from ..output_selection import asks_verbose, choose_outputs
from .style import STANDARD, AnsweringModel, Reply, ResponseStyle

JSON = "application/json"
CLASSIFIERS = ("binary", "multiclass")


def encode_json(table: Table, verbose: bool) -> bytes:
    """``{"probabilities-1d", "probabilities"[, "predicted_label"]}`` or ``{"prediction"}``, in that order."""
    column = table.columns[0]
    if column.kind != "probabilities":
        return orjson.dumps({"prediction": column.values}, option=orjson.OPT_SERIALIZE_NUMPY)
    probabilities = column.values
    answer = {"probabilities-1d": np.ascontiguousarray(probabilities[:, 1:]), "probabilities": probabilities}
    if verbose:
        answer["predicted_label"] = np.argmax(probabilities, axis=1)
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


_ENCODERS = {False: partial(encode_json, verbose=False), True: partial(encode_json, verbose=True)}


def _content_type(accept: str | None) -> str:
    """The toolkit labels the answer with the Accept it was given (a missing one: JSON)."""
    if accept and "," not in accept and base_media_type(accept) == JSON:
        return accept.strip()
    return JSON


class BuiltinAlgorithmStyle(ResponseStyle):
    def reply(
        self,
        request: InferenceRequest,
        request_type: str,
        model: AnsweringModel,
        default_outputs: tuple[str, ...],
        default_accept: str | None,
    ) -> Reply:
        if choose_outputs(request.headers, None, ()) is not None:  # custom attributes chose kinds: standard layouts
            return STANDARD.reply(request, request_type, model, (), default_accept)
        codec = codecs.response_codec(request.accept, default_accept or JSON)
        verbose = asks_verbose(request.accept)
        kinds: tuple[str, ...] | None = ("probabilities",) if model.kind in CLASSIFIERS else None
        if codec.media_type != JSON:
            if verbose and kinds is not None:
                kinds = ("probabilities", "predicted_label")
            return Reply(kinds, None, codec.encode, codec.media_type)
        return Reply(kinds, None, _ENCODERS[verbose], _content_type(request.accept))


STYLE = BuiltinAlgorithmStyle(BUILTIN_ALGORITHM)
