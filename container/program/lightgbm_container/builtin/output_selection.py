"""Which output kinds a request asks for (the kinds themselves: :mod:`..model.outputs`).

Most specific first:

1. ``X-Amzn-SageMaker-Custom-Attributes: output=predicted_label,probabilities`` (``;``
   separates other attributes, e.g. ``top_k=5``); the header is echoed back when used,
   as SageMaker documents for a container that acts on it;
2. an Accept parameter ``verbose`` (``application/json;verbose``), as SageMaker's built-in
   LightGBM understands it: probabilities, predicted label and labels for a classifier;
3. the container-wide default ``SAGEMAKER_INFERENCE_OUTPUT`` (SageMaker XGBoost's variable),
   whose names are checked when the server starts (:func:`check_default_kinds`);
4. nothing chosen: the default answer, in the layout served since the first release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import BadRequest, did_you_mean
from ..model.outputs import KIND_NAMES, VERBOSE, check_kinds
from ..settings import SettingsError

CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
MAX_TOP_K = 1000


@dataclass(frozen=True)
class OutputChoice:
    kinds: tuple[str, ...] | None  # None: the verbose set for the model's kind
    source: str  # where the choice came from, for error messages
    top_k: int | None = None
    echo: str | None = None  # the custom attributes to echo back

    def for_model(self, model_kind: str, unavailable: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """The kinds for a model of this kind, or a 400 listing the kinds it answers."""
        requested = self.kinds if self.kinds is not None else VERBOSE[model_kind]
        return check_kinds(requested, model_kind, self.source, unavailable)


def output_names(text: str) -> tuple[str, ...]:
    """``"predicted_label, probabilities"`` -> ``("predicted_label", "probabilities")``."""
    return tuple(name.strip().lower() for name in text.split(",") if name.strip())


def _custom_attributes(value: str) -> tuple[tuple[str, ...] | None, int | None]:
    """``output`` kinds and ``top_k`` from the attributes; other attributes belong to others."""
    kinds, top_k = None, None
    for part in value.split(";"):
        key, separator, text = part.partition("=")
        key = key.strip().lower()
        if not separator:
            continue
        if key == "output":
            kinds = output_names(text)
            if not kinds:
                raise BadRequest(f"{CUSTOM_ATTRIBUTES_HEADER} has output= with no kinds; e.g. output=predicted_label")
        elif key == "top_k":
            try:
                top_k = int(text.strip())
            except ValueError:
                top_k = 0
            if not 1 <= top_k <= MAX_TOP_K:
                raise BadRequest(
                    f"{CUSTOM_ATTRIBUTES_HEADER}: top_k={text.strip()!r} must be a whole number from 1 to {MAX_TOP_K}"
                )
    return kinds, top_k


def asks_verbose(accept: str | None) -> bool:
    """Whether an Accept media range carries the parameter ``verbose`` (``application/json;verbose``)."""
    for part in (accept or "").split(","):
        for parameter in part.split(";")[1:]:
            if parameter.split("=", 1)[0].strip().lower() == "verbose":
                return True
    return False


def choose_outputs(headers: Mapping[str, str], accept: str | None, default: tuple[str, ...]) -> OutputChoice | None:
    """The request's choice of output kinds, or None for the default answer."""
    attributes = headers.get(CUSTOM_ATTRIBUTES_HEADER)
    kinds, top_k = _custom_attributes(attributes) if attributes else (None, None)
    echo = attributes if kinds is not None or top_k is not None else None
    if kinds is not None:
        return OutputChoice(kinds, f"{CUSTOM_ATTRIBUTES_HEADER} output=", top_k, echo)
    if asks_verbose(accept):
        return OutputChoice(None, f"Accept {accept!r}", top_k, echo)
    if default:
        return OutputChoice(default, "SAGEMAKER_INFERENCE_OUTPUT", top_k, echo)
    return None


def check_default_kinds(kinds: tuple[str, ...], variable: str = "SAGEMAKER_INFERENCE_OUTPUT") -> tuple[str, ...]:
    """The container-wide default kinds, each one the container knows; else a SettingsError
    with the name an unknown one resembles (``serve`` stops at start with it)."""
    for kind in kinds:
        if kind not in KIND_NAMES:
            hint = did_you_mean(kind, KIND_NAMES)
            raise SettingsError(
                f"{variable}: unknown output kind {kind!r}{f' (did you mean {hint!r}?)' if hint else ''}; "
                f"the kinds are {', '.join(KIND_NAMES)}"
            )
    return kinds
