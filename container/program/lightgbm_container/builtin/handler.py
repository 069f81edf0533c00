"""The built-in LightGBM behaviour as a handler: load, then decode -> validate -> answer -> encode.

:meth:`LightGBMHandler.transform` is the one answer path: the request's codec decodes, the
model checks the rows against its features, answers the output kinds the request chose (or
the default answer, itself a kind with its own layout: :mod:`..model.outputs`), and the
response codec, in the response style, encodes that table. Every refusal of the request's
headers (415, 406, a bad kind) comes before any work.

Its steps also have the SageMaker Inference Toolkit's shapes (``model_fn``, ``input_fn``,
``predict_fn``, ``output_fn``) because they are the defaults a user's ``inference.py`` falls
back to: a script that defines only ``input_fn`` still loads, predicts and encodes with these.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import codecs
from ..compilation.parity import disagreement
from ..compilation.predictor import load_compiled
from ..compilation.switch import switcher
from ..contract.handler import InferenceRequest, InferenceResponse, StepTimer
from ..errors import BadRequest, EmptyBody
from ..heap import heap_in_use
from ..model.batch import Batch
from ..model.derived import Derived
from ..model.files import ModelLoadError, find_model_file, is_lightgbm_text
from ..model.loaded import LoadedModel
from ..model.loading import LoadOptions, ServedModel, adopt, load_model
from ..model.outputs import Table
from ..model.pipeline import PipelineModel
from .output_selection import CUSTOM_ATTRIBUTES_HEADER
from .prefetch import prefetched
from .styles import AUTO_STYLE, STYLES
from .styles.style import STANDARD, ResponseStyle

log = logging.getLogger(__name__)

EMPTY_BODY = "the request body is empty; send one or more records (e.g. CSV rows of features)"


@dataclass(frozen=True)
class BuiltinOptions:
    """What the built-in steps need from the settings, handed over explicitly."""

    predict_threads: int
    max_values: int  # the most feature values one request may expand to (see LoadedModel.validate)
    compiled_model: Path | None = (
        None  # lleaves object compiled before the workers started (LIGHTGBM_PREDICTOR=lleaves)
    )
    compile_status: Path | None = None  # the background compile job to switch to when it is ready (compilation/)
    root: Path | None = None  # every model file must resolve inside it (multi-model)
    default_accept: str = "application/json"  # output_fn's answer type for a missing or */* Accept
    invocations_accept: str | None = None  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT as set: transform's, when set
    default_outputs: tuple[str, ...] = ()  # SAGEMAKER_INFERENCE_OUTPUT: kinds when a request chooses none
    style: str = AUTO_STYLE  # LIGHTGBM_RESPONSE_STYLE (styles/): every answer's layout; auto: each model's own
    #: The LightGBM text of pickled trees (serve gives the compile cache's models/, in the writable temp directory).
    derived_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "lightgbm-container-cache" / "models"
    )
    allow_pickle: bool = True  # LIGHTGBM_ALLOW_PICKLE
    derived: Derived | None = None  # a pickled model's trees, derived by serve before the workers started

    def load_options(self) -> LoadOptions:
        return LoadOptions(self.predict_threads, self.derived_dir, self.allow_pickle, self.root, self.derived)


class LightGBMHandler:
    description = "built-in LightGBM"
    reads_in_pieces = True  # a large CSV, JSON Lines or NPY body: decoded, validated and predicted piece by piece

    def __init__(self, options: BuiltinOptions) -> None:
        self.options = options
        self.style: ResponseStyle | None = STYLES[options.style] if options.style != AUTO_STYLE else None
        self._adopted: weakref.WeakKeyDictionary[Any, ServedModel] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ the Handler contract

    def load(self, model_dir: Path) -> ServedModel:
        model = self.model_fn(model_dir)
        model.warm_up()
        if model.predictor.name == "lightgbm" and self.options.compile_status is not None:
            self.switch_when_compiled(model, self.options.compile_status)
        return model

    def switch_when_compiled(
        self,
        model: ServedModel,
        status_file: Path,
        check: Any = None,
        measured: Callable[[int], None] | None = None,
    ) -> int:
        """Predict with the compiled trees once the job behind ``status_file`` has them
        (:mod:`..compilation.switch`); ``check``: a Booster they must also agree with;
        ``measured``: told the bytes the compiled trees took in this process at each switch."""
        install = partial(self._install_compiled, model, check=check, measured=measured)
        return switcher().watch(status_file, install, str(model.model_file))

    def _install_compiled(
        self,
        model: ServedModel,
        object_file: Path,
        check: Any = None,
        measured: Callable[[int], None] | None = None,
    ) -> str | None:
        """Predict ``model`` with the compiled ``object_file``; returns why not (None: it does).
        ``check``: a Booster the compiled trees must also agree with (a user's ``model_fn``'s)."""
        before = heap_in_use()
        compiled = load_compiled(model.model_file, object_file, self.options.predict_threads)
        if compiled is None:
            return f"the compiled object {object_file} could not be loaded"
        if check is not None and (difference := disagreement(check, compiled.predict)) is not None:
            return (
                f"the Booster from model_fn differs from the compiled {model.model_file} "
                f"(max difference {difference:.3g})"
            )
        compiled.predict(np.zeros((1, compiled.compiled.num_feature())))  # first-call costs paid here, not by a request
        # Before the predictor it replaces is freed: LLVM's engine (malloc'd) and the object's
        # sections it maps outside malloc, about the object's size (2,000 trees: 11.3 + 5.7 MB).
        size = max(0, heap_in_use() - before) + object_file.stat().st_size
        model.predictor = compiled
        if measured is not None:
            measured(size)
        return None

    def transform(self, model: Any, request: InferenceRequest) -> InferenceResponse:
        """Predict for every record; one output record per input record, in order.

        A large body (:class:`..contract.handler.BodyStream`) in a type that reads in pieces is
        decoded, validated and predicted piece by piece, so a worker holds one piece's rows at a
        time; the answers are joined and encoded once, so an error anywhere in the body is a 4xx
        before any byte of the answer is sent."""
        timer = StepTimer()
        loaded: ServedModel = model
        options = self.options
        stream = request.stream
        chunks = stream.chunks() if stream is not None else None
        body = (
            request.body if chunks is None else next(chunks, b"")
        )  # a stream's first piece: its type is sniffed on it
        decoder = self._decoder(body, request.content_type)
        reply = self.style_of(loaded).reply(
            request, decoder.media_type, loaded, options.default_outputs, options.invocations_accept
        )
        if chunks is None:
            batch = decoder.decode(body)
            timer.decoded()
            table = loaded.answer(loaded.validate(batch, options.max_values), reply.kinds, reply.top_k)
        elif decoder.decode_pieces is None:  # a type that needs its whole body (one JSON document)
            batch = decoder.decode(body + b"".join(chunks))
            timer.decoded()
            table = loaded.answer(loaded.validate(batch, options.max_values), reply.kinds, reply.top_k)
        else:
            assert stream is not None
            pieces = decoder.decode_pieces(itertools.chain([body], chunks), stream.length)
            table = Table.joined(
                [
                    loaded.answer(loaded.validate(batch, options.max_values), reply.kinds, reply.top_k)
                    for batch in prefetched(pieces)  # the next piece decodes while this one predicts
                ]
            )
            timer.decoded()  # decoding and predicting interleave: their sum is the predict step
        timer.predicted()
        encoded = reply.encode(table)
        headers = {CUSTOM_ATTRIBUTES_HEADER: reply.echo} if reply.echo else {}
        return InferenceResponse(encoded, reply.content_type, headers=headers, steps=timer.steps(table.rows))

    def style_of(self, model: ServedModel) -> ResponseStyle:
        """``LIGHTGBM_RESPONSE_STYLE`` when set, else the model's own (the built-in algorithm's for a
        model in its layout: :mod:`..model.conventions`), else the standard layouts."""
        return self.style or STYLES.get(model.response_style or STANDARD.name, STANDARD)

    # ------------------------------------------------------------------ the steps (user code's defaults)

    def model_fn(self, model_dir: Path) -> ServedModel:
        model = load_model(Path(model_dir), self.options.load_options())
        if self.options.compiled_model is not None:  # compiled before the workers started (LIGHTGBM_PREDICTOR=lleaves)
            model.predictor = (
                load_compiled(model.model_file, self.options.compiled_model, self.options.predict_threads)
                or model.predictor
            )
        return model

    def input_fn(self, input_data: bytes | str, content_type: str | None) -> Batch:
        body = input_data.encode() if isinstance(input_data, str) else bytes(input_data)
        return self._decoder(body, content_type).decode(body)

    def predict_fn(self, data: Any, model: Any) -> np.ndarray:
        """Predictions for ``data`` (a Batch, an array, a DataFrame or nested lists) with ``model``
        (what the built-in ``model_fn`` loads; a ``lightgbm.Booster``, LGBM estimator or Pipeline
        ending in one, served like our own models: a classifier's probabilities, not its labels;
        or anything with ``predict``, trusted)."""
        batch = as_batch(data)
        loaded = self._loaded(model)
        if loaded is None:  # a model of the user's own making: trust its predict
            if batch.cells is not None:  # text, and no categories to map it with: the codec's 400
                return np.asarray(model.predict(batch.cells_to_matrix()))
            if batch.values is None:
                raise BadRequest("records keyed by name need a LightGBM model; send rows of features")
            return np.asarray(model.predict(batch.values))
        return loaded.predict(loaded.validate(batch, self.options.max_values))

    def output_fn(self, prediction: Any, accept: str | None) -> tuple[bytes, str]:
        """``(body, content type)`` of the default answer; a missing or wildcard Accept answers
        in ``default_accept``."""
        codec = codecs.response_codec(accept, self.options.default_accept)
        return codec.encode(Table.default(np.asarray(prediction, dtype=np.float64))), codec.media_type

    def adopt(self, model: Any, model_dir: Path) -> None:
        """Prepare what a user's ``model_fn`` returned (a Booster, an LGBM estimator, a Pipeline)
        for the built-in ``predict_fn``: now, not on the first request, and with the compiled
        trees when ``serve`` compiled this model directory's file and they agree with the user's
        trees (same parity check as the compile itself; trees loaded differently keep LightGBM's
        predictor)."""
        loaded = self._loaded(model)
        if (
            loaded is None
            or loaded is model
            or (self.options.compiled_model is None and self.options.compile_status is None)
        ):
            return
        try:
            model_file, _ = find_model_file(model_dir)
        except ModelLoadError:
            return
        if is_lightgbm_text(model_file):  # a pickle's trees were derived to the job's file already
            loaded.model_file = model_file
        check = loaded.trees.booster if isinstance(loaded, PipelineModel) else loaded.booster
        if self.options.compiled_model is None:
            assert self.options.compile_status is not None
            self.switch_when_compiled(loaded, self.options.compile_status, check=check)
            return
        problem = self._install_compiled(loaded, self.options.compiled_model, check=check)
        if problem is None:
            log.info("the Booster from model_fn agrees with the compiled %s: predicting with lleaves", model_file)
        else:
            log.info("the Booster from model_fn keeps LightGBM's predictor: %s", problem)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _decoder(body: bytes, content_type: str | None) -> codecs.Codec:
        if not body or not body.strip():
            raise EmptyBody(EMPTY_BODY)
        return codecs.request_codec(content_type, body)

    def _loaded(self, model: Any) -> ServedModel | None:
        """``model`` as the built-in steps serve it (None: not LightGBM; its own predict is trusted)."""
        if isinstance(model, LoadedModel | PipelineModel):
            return model
        try:
            loaded = self._adopted.get(model)
        except TypeError:  # not weakly referenceable: not a LightGBM object
            return None
        if loaded is None:
            loaded = adopt(model, self.options.load_options())
            if loaded is not None:
                self._adopted[model] = loaded
        return loaded


def as_batch(data: Any) -> Batch:
    """What a user's ``input_fn`` may return, as the rows the model checks."""
    if isinstance(data, Batch):
        return data
    columns = getattr(data, "columns", None)
    if columns is not None and hasattr(data, "to_numpy"):  # a pandas DataFrame: named unless the names are positions
        names = tuple(str(name) for name in columns)
        named = not all(isinstance(name, (int, np.integer)) for name in columns)
        return Batch(np.asarray(data.to_numpy(dtype=np.float64)), names if named else None)
    try:
        values = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadRequest(f"cannot predict on {type(data).__name__}: expected rows of numbers") from None
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2:
        raise BadRequest(f"expected rows of features (2 dimensions), got {values.ndim}")
    return Batch(values)


def prediction_rows(prediction: Any) -> int | None:
    """The records a prediction answers, when its shape says (for ``lightgbm_inference_rows``)."""
    shape = getattr(prediction, "shape", None)
    if shape:
        return int(shape[0])
    return len(prediction) if isinstance(prediction, list) else None
