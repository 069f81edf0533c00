"""The SageMaker Inference Toolkit's own defaults, for a script whose ``predict_fn`` is its own.

A script that defines ``predict_fn`` expects what the toolkit's default ``input_fn`` gives it
(``sagemaker_inference.decoder.decode``: a numpy array from CSV, JSON or NPY), and is answered
as the toolkit's default ``output_fn`` answers (``sagemaker_inference.encoder.encode``: the
array itself as JSON, CSV or NPY, not our ``{"predictions": ...}``). So with the user's
``predict_fn`` in the pipeline the missing steps are the toolkit's, run through the toolkit's
own package (shipped in the image). Without it, the built-in steps keep our richer types
between them (:mod:`..builtin.handler`), byte for byte.

Deliberate differences, both about errors: a type the toolkit's decoder or encoder does not
know is a 415 or a 406 naming the types it knows (the toolkit answers 500).
"""

from __future__ import annotations

from typing import Any

from ..errors import NotAcceptable, UnsupportedMediaType

#: The types sagemaker_inference's decoder and encoder know (content_types.{JSON,CSV,NPY,NPZ}).
DECODED = ("application/json", "text/csv", "application/x-npy", "application/x-npz")
ENCODED = ("application/json", "text/csv", "application/x-npy")


def input_fn(input_data: Any, content_type: str | None) -> Any:
    """The toolkit's default ``input_fn``: ``decoder.decode`` (exact content types, as it compares them)."""
    from sagemaker_inference import decoder, errors  # noqa: PLC0415 - only scripts with their own predict_fn use it

    try:
        return decoder.decode(input_data, content_type)
    except errors.UnsupportedFormatError:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not one the SageMaker Inference Toolkit's default input_fn decodes "
            f"({', '.join(DECODED)}); define input_fn in your script to read it",
            supported=list(DECODED),
        ) from None


def output_fn(prediction: Any, accept: str) -> tuple[Any, str]:
    """The toolkit's default ``output_fn``: ``encoder.encode``, answered in ``accept``."""
    from sagemaker_inference import encoder, errors  # noqa: PLC0415 - see input_fn

    try:
        return encoder.encode(prediction, accept), accept
    except errors.UnsupportedFormatError:
        raise NotAcceptable(
            f"cannot answer in {accept!r}: the SageMaker Inference Toolkit's default output_fn encodes "
            f"{', '.join(ENCODED)}; define output_fn in your script for others",
            supported=list(ENCODED),
        ) from None
