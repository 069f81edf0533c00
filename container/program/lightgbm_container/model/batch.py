"""The rows of a request, decoded but not yet checked against a model.

Codecs produce a :class:`Batch`; the model checks it (:meth:`LoadedModel.validate`) and
turns it into the matrix it predicts on. It lives beside the model, not in serving, because
it is the contract between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadRequest

#: A codec's rule for a value that must be a number: ``(value, row, column) -> float``, or the
#: codec's own 400 naming where the value is (CSV counts lines from 1, JSON rows from 0).
NumberRule = Callable[[Any, int, Any], float]


def reject_text(value: Any, row: int, column: Any) -> float:
    """The rule for rows that came from user code rather than a codec."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is None:
        return float("nan")
    raise BadRequest(f"row {row}, feature {column!r}: {value!r} is not a number", row=row, feature=str(column))


@dataclass(frozen=True)
class Batch:
    """Decoded request rows, not yet checked against a model.

    One of three shapes:

    - a matrix of numbers (``values``; with ``columns`` when the payload named them);
    - JSON records, kept as they are with every key seen (``columns``): a matrix for
      records needs the model's features, and building it before the keys are checked
      would let a request with many unknown keys allocate rows x keys floats;
    - positional rows that hold text (``cells``), which only a model with categorical
      features can turn into numbers: the codec could not, so the model decides, and
      ``number`` is the codec's rule (and error message) for every other column.
    """

    values: np.ndarray | None = None
    columns: tuple[str, ...] | None = None
    records: Sequence[dict[str, Any]] | None = None
    cells: Sequence[Sequence[Any]] | None = None
    number: NumberRule = reject_text

    def cells_to_matrix(self, columns: Mapping[int, Callable[[Any], float]] | None = None) -> np.ndarray:
        """``cells`` as numbers: ``columns`` converts the columns it names (categories to codes),
        the codec's :attr:`number` rule every other value, row by row, so the first bad value
        in reading order is the one a 400 names."""
        assert self.cells is not None
        columns = columns or {}
        values = np.empty((len(self.cells), len(self.cells[0])), dtype=np.float64)
        for row, cells in enumerate(self.cells):
            for column, value in enumerate(cells):
                convert = columns.get(column)
                values[row, column] = self.number(value, row, column) if convert is None else convert(value)
        return values

    @property
    def rows(self) -> int:
        if self.records is not None:
            return len(self.records)
        if self.cells is not None:
            return len(self.cells)
        assert self.values is not None
        return int(self.values.shape[0])
