"""The rows of a request, decoded but not yet checked against a model.

Codecs produce a :class:`Batch`; the model checks it (:meth:`LoadedModel.validate`) and
turns it into the matrix it predicts on. It lives beside the model, not in serving, because
it is the contract between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Batch:
    """Decoded request rows, not yet checked against a model.

    Either a matrix (``values``; with ``columns`` when the payload named them), or, for
    JSON records, the records themselves with every key seen (``columns``): a matrix for
    records needs the model's features, and building it before the keys are checked
    would let a request with many unknown keys allocate rows x keys floats.
    """

    values: np.ndarray | None = None
    columns: tuple[str, ...] | None = None
    records: Sequence[dict[str, Any]] | None = None

    @property
    def rows(self) -> int:
        if self.records is not None:
            return len(self.records)
        assert self.values is not None
        return int(self.values.shape[0])
