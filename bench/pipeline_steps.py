"""What a Pipeline's steps cost per request and per row, in the worker (in-process, no HTTP).

    .venv/bin/python bench/pipeline_steps.py [--repeat K]

A served Pipeline runs its steps in Python (scikit-learn) before the compiled trees, so their
cost adds to every request. For each supported transformer, fitted on 20,000 seeded rows (8
number columns, 2 text columns), this times ``transform`` on 1 row and on 1,000 rows (medians of
K timed calls each): the first is the fixed cost a single-row request pays, and
(1,000 rows - 1 row) / 999 is the cost of each further row. Beside them: ours turning a decoded
CSV body into the DataFrame the steps take (``PipelineModel._frame``), and the trees on the
transformed rows, compiled or not, for scale. The report goes to stdout and
bench/results/pipeline_steps.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "program"))
from lightgbm_container.packages import use_pickle_packages

use_pickle_packages()  # scikit-learn before LightGBM (lightgbm_container/packages.py)

import joblib  # noqa: E402
import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler  # noqa: E402

import measure  # noqa: E402
import report  # noqa: E402
from lightgbm_container.codecs import codec_for  # noqa: E402
from lightgbm_container.model.loading import LoadOptions, load_model  # noqa: E402

NUMBERS = [f"n{i}" for i in range(8)]
TEXTS = ["color", "size"]
RESULTS = Path(__file__).resolve().parent / "results" / "pipeline_steps.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300, help="timed calls per figure (median)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    numbers = pd.DataFrame(rng.normal(size=(rows, len(NUMBERS))) * 10, columns=NUMBERS)
    numbers["color"] = rng.choice(["red", "green", "blue", "teal"], size=rows)
    numbers["size"] = rng.choice(["S", "M", "L"], size=rows)
    return numbers


def per_request_and_1k(call: Callable[[int], object], repeat: int) -> tuple[float, float]:
    """Median seconds of ``call(1)`` and of ``call(1_000)`` (the rows to work on)."""
    return measure.median_call_seconds(lambda: call(1), repeat), measure.median_call_seconds(
        lambda: call(1_000), repeat
    )


def transformers() -> dict[str, tuple[object, list[str]]]:
    """name -> (unfitted transformer, the columns it takes)."""
    return {
        "SimpleImputer (8 number columns)": (SimpleImputer(), NUMBERS),
        "StandardScaler (8 number columns)": (StandardScaler(), NUMBERS),
        "FunctionTransformer(np.log1p ∘ abs) (8 number columns)": (
            FunctionTransformer(lambda x: np.log1p(np.abs(x))),
            NUMBERS,
        ),
        "OneHotEncoder (2 text columns)": (OneHotEncoder(handle_unknown="ignore"), TEXTS),
        "OrdinalEncoder (2 text columns)": (OrdinalEncoder(), TEXTS),
        "ColumnTransformer(SimpleImputer, OneHotEncoder) (all 10)": (
            ColumnTransformer(
                [("numbers", SimpleImputer(), NUMBERS), ("text", OneHotEncoder(handle_unknown="ignore"), TEXTS)]
            ),
            NUMBERS + TEXTS,
        ),
    }


def _transform(transformer: object, frames: list[pd.DataFrame], rows: int) -> object:
    return transformer.transform(frames[0] if rows == 1 else frames[1])  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(5)
    train = frame(rng, 20_000)
    labels = (train["n0"] + (train["color"] == "red") * 5 > 0).astype(int)
    test = {1: frame(rng, 1), 1_000: frame(rng, 1_000)}
    rows: list[tuple[str, float, float]] = []
    for name, (transformer, columns) in transformers().items():
        transformer.fit(train[columns])  # type: ignore[attr-defined]
        one, thousand = per_request_and_1k(
            partial(_transform, transformer, [test[1][columns], test[1_000][columns]]), args.repeat
        )
        rows.append((name, one, thousand))
        print(f"[bench] {name}: 1 row {one * 1e6:,.0f} us, 1,000 rows {thousand * 1e6:,.0f} us", flush=True)

    # Ours around the steps: the body decoded, the DataFrame built, the trees on the result.
    pipeline = Pipeline([("prep", transformers()["ColumnTransformer(SimpleImputer, OneHotEncoder) (all 10)"][0])])
    pipeline.steps.append(("model", lgb.LGBMClassifier(n_estimators=100, verbose=-1)))
    pipeline.fit(train, labels)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model").mkdir()
        joblib.dump(pipeline, Path(tmp) / "model" / "model.joblib")
        served = load_model(Path(tmp) / "model", LoadOptions(threads=1, derived_dir=Path(tmp) / "derived"))
        csv = codec_for("text/csv")
        assert csv is not None
        bodies = {n: test[n].to_csv(header=False, index=False).encode() for n in test}
        matrices = {n: served.validate(csv.decode(bodies[n]), 10**9) for n in test}
        for label, call in (
            ("ours: CSV body decoded, the steps' DataFrame built", lambda n: served._frame(csv.decode(bodies[n]), 10**9)),  # type: ignore[union-attr]
            ("the trees (LightGBM, not yet compiled) on the steps' output", lambda n: served.trees.answer(matrices[n])),  # type: ignore[union-attr]
        ):  # fmt: skip
            one, thousand = per_request_and_1k(call, args.repeat)
            rows.append((label, one, thousand))
            print(f"[bench] {label}: 1 row {one * 1e6:,.0f} us, 1,000 rows {thousand * 1e6:,.0f} us", flush=True)

    lines = [
        "# A Pipeline's steps: cost per request and per row (in-process)",
        "",
        f"- machine: {report.machine_summary()}",
        f"- scikit-learn {sklearn.__version__}, pandas {pd.__version__}; medians of {args.repeat} calls",
        "",
        "| step | 1 row (µs): per request | 1,000 rows (µs) | each further row (µs) |",
        "|---|---:|---:|---:|",
    ]
    for name, one, thousand in rows:
        lines.append(f"| {name} | {one * 1e6:,.0f} | {thousand * 1e6:,.0f} | {(thousand - one) / 999 * 1e6:.2f} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
