"""A pickled model's trees, derived once before the workers start, so most workers never unpickle.

Unpickling a LightGBM estimator needs scikit-learn (its classes live in the pickle), and
importing it costs every worker tens of MB and the gunicorn master half a second. But a
pickled ``Booster`` or ``LGBMClassifier``/``Regressor``/``Ranker`` is, once unpickled, nothing
more than LightGBM text and the estimator's classes. So ``serve`` runs
``python -m lightgbm_container.model.derived FILE DIR`` before its workers: it unpickles FILE
(every refusal of :mod:`.pickles` applies: ``serve`` stops with its message), writes the trees'
text and the classes into DIR (the compile cache), and prints where (JSON). The workers then
load that text like any text model, without scikit-learn. Only a Pipeline, whose steps are
scikit-learn code, is unpickled by the workers (classes that JSON cannot carry exactly, too).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic_files import write_once
from ..packages import use_pickle_packages
from .files import ModelLoadError


@dataclass(frozen=True)
class Derived:
    """What was derived from the pickle ``source``."""

    source: Path
    model_file: Path  # the trees as LightGBM text (the compile job's input too)
    #: What LightGBM text cannot say (the estimator's classes) for LoadedModel.from_text; None when
    #: the workers must unpickle ``source`` themselves (a Pipeline, classes JSON cannot carry).
    metadata_file: Path | None
    what: str  # "LGBMClassifier", "Pipeline(SimpleImputer, ..., LGBMRegressor)"

    def to_json(self) -> str:
        return json.dumps({name: str(value) if value is not None else None for name, value in vars(self).items()})

    @classmethod
    def from_json(cls, text: str) -> Derived:
        raw: dict[str, Any] = json.loads(text)
        metadata = raw.get("metadata_file")
        return cls(Path(raw["source"]), Path(raw["model_file"]), Path(metadata) if metadata else None, raw["what"])


def derive(source: Path, directory: Path) -> Derived:
    """Unpickle ``source`` (a :class:`.files.ModelLoadError` says why it cannot be served) and write its trees."""
    from . import pickles  # noqa: PLC0415 - imports joblib; only this process and pickle-serving workers pay

    unpickled = pickles.load(source, allow=True)
    model_file = pickles.text_file(pickles.model_text(unpickled.booster), directory)
    classes = list(unpickled.classes) if unpickled.classes is not None else None
    metadata_file = None
    if unpickled.preprocess is None and _carried_exactly(classes):
        metadata_file = write_once(directory, "metadata", ".json", json.dumps({"classes": classes}).encode())
    return Derived(source, model_file, metadata_file, unpickled.what)


def _carried_exactly(classes: list[Any] | None) -> bool:
    """Whether JSON gives ``classes`` back as they are, types included (numbers, text, booleans)."""
    if classes is None:
        return True
    try:
        back = json.loads(json.dumps(classes, allow_nan=False))
    except (TypeError, ValueError):
        return False
    return back == classes and [type(value) for value in back] == [type(value) for value in classes]


def main(argv: list[str]) -> int:
    """``python -m lightgbm_container.model.derived FILE DIR``: the Derived record on stdout, or
    on stderr why FILE cannot be served (exit 1). Warnings (scikit-learn version skew) go to stderr."""
    use_pickle_packages()  # before LightGBM is imported: its estimators need scikit-learn
    try:
        derived = derive(Path(argv[0]), Path(argv[1]))
    except ModelLoadError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(derived.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
