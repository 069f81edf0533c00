"""A model directory, or an object a user's ``model_fn`` returned, as the model the built-in handler serves.

The one place that knows every format: LightGBM text (with ``train``'s metadata when it is
there), and pickles of a Booster, a LightGBM scikit-learn estimator or a Pipeline ending in
one (:mod:`.pickles`). Whatever the format, the trees end up as a :class:`.loaded.LoadedModel`
whose ``model_file`` is LightGBM text (derived into ``derived_dir`` for a pickle), so the
compile job, the parity check and the switch work the same for all. A pickle ``serve`` already
derived before the workers started (:mod:`.derived`) is loaded from that text, not unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import pickles
from .conventions import response_style
from .derived import Derived
from .files import check_model_text, find_model_file, read_metadata
from .formats import PICKLE, served_format
from .loaded import LoadedModel
from .pipeline import PipelineModel

ServedModel = LoadedModel | PipelineModel


@dataclass(frozen=True)
class LoadOptions:
    threads: int  # LightGBM threads per prediction
    derived_dir: Path  # where the LightGBM text of pickled trees is written (the compile cache)
    allow_pickle: bool = True  # LIGHTGBM_ALLOW_PICKLE
    root: Path | None = None  # every file must resolve inside it (multi-model)
    derived: Derived | None = None  # what serve derived from the single model's pickle before the workers started


def load_model(model_dir: Path, options: LoadOptions) -> ServedModel:
    """The model in ``model_dir``, predicting with LightGBM (its compiled trees come later)."""
    model_file, metadata_file = find_model_file(model_dir, options.root)
    model: ServedModel
    if served_format(model_file) == PICKLE:
        derived = options.derived
        if derived is not None and derived.metadata_file is not None and derived.source == model_file:
            text = derived.model_file.read_bytes()
            metadata = read_metadata(derived.metadata_file)
            model = LoadedModel.from_text(text, derived.model_file, metadata, options.threads, source=model_file)
        else:
            model = from_unpickled(pickles.load(model_file, options.allow_pickle), model_file, options)
    else:
        text = model_file.read_bytes()
        model = LoadedModel.from_text(text, model_file, read_metadata(metadata_file), options.threads)
    if isinstance(model, LoadedModel):
        model.response_style = response_style(model_file, model.metadata)
    return model


def from_unpickled(unpickled: pickles.Unpickled, source: Path, options: LoadOptions) -> ServedModel:
    """The trees of a pickle (or of a user's object), their text derived into ``derived_dir`` for
    the compile (checked as any model text is), with the estimator's classes."""
    model_file = pickles.text_file(pickles.model_text(unpickled.booster), options.derived_dir)
    check_model_text(model_file.read_bytes(), model_file)
    trees = LoadedModel.from_booster(unpickled.booster, options.threads, model_file, unpickled.classes, source)
    if unpickled.preprocess is None:
        return trees
    assert unpickled.input_names is not None
    return PipelineModel(unpickled.preprocess, trees, unpickled.input_names, unpickled.what)


def adopt(obj: Any, options: LoadOptions) -> ServedModel | None:
    """What a user's ``model_fn`` returned, served like our own models when it is LightGBM
    (a Booster, an LGBM estimator, a Pipeline ending in one); None for anything else."""
    if isinstance(obj, LoadedModel | PipelineModel):
        return obj
    if type(obj).__name__ == "Booster" and type(obj).__module__.startswith("lightgbm"):
        return LoadedModel.from_booster(obj, options.threads)  # served as it is (its compile: the handler's adopt)
    module = type(obj).__module__
    if not module.startswith(("lightgbm", "sklearn")):
        return None
    try:
        unpickled = pickles.classify(obj, "the object model_fn returned")
    except pickles.ModelLoadError:
        return None
    return from_unpickled(unpickled, Path("<model_fn>"), options)
