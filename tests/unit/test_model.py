import json

import lightgbm as lgb
import numpy as np
import pytest

from lightgbm_container.errors import BadRequest, PayloadTooLarge
from lightgbm_container.model.batch import Batch
from lightgbm_container.model.files import ModelLoadError, check_model_text, find_model_file
from lightgbm_container.model.loaded import output_kind
from lightgbm_container.model.loading import LoadOptions, load_model

LIMIT = 6 * 1024 * 1024  # the default payload limit, in values


def _train(tmp_path, objective="regression", classes=1, name="model.txt"):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 4))
    labels = (
        (features[:, 0] > 0).astype(float)
        if classes == 2
        else rng.integers(0, classes, 300)
        if classes > 2
        else features[:, 0] * 3
    )
    params = {"objective": objective, "verbosity": -1, "num_leaves": 7}
    if classes > 2:
        params["num_class"] = classes
    booster = lgb.train(params, lgb.Dataset(features, labels), 10)
    tmp_path.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(tmp_path / name))
    return booster, features


def test_bare_model_file_with_any_name_is_found(tmp_path):
    booster, features = _train(tmp_path, name="lightgbm-regression-model.txt")
    (tmp_path / "notes.md").write_text("not a model")
    model = load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))
    assert model.kind == "regression" and model.feature_names == tuple(f"Column_{i}" for i in range(4))
    np.testing.assert_allclose(model.predict(features), booster.predict(features), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "objective, classes, kind, shape", [("binary", 2, "binary", (300,)), ("multiclass", 3, "multiclass", (300, 3))]
)
def test_classification_outputs_are_probabilities(tmp_path, objective, classes, kind, shape):
    _, features = _train(tmp_path, objective, classes)
    model = load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))
    predictions = model.predict(features)
    assert model.kind == kind and predictions.shape == shape
    assert ((predictions >= 0) & (predictions <= 1)).all()


def test_model_directory_errors_say_what_was_found(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        find_model_file(tmp_path / "missing")
    (tmp_path / "model.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ModelLoadError, match="must be extracted"):
        find_model_file(tmp_path)
    _train(tmp_path, name="a.txt")
    _train(tmp_path, name="b.txt")
    with pytest.raises(ModelLoadError, match="2 LightGBM models"):
        find_model_file(tmp_path)


def test_validate_counts_features_and_hints_at_the_label(tmp_path):
    _train(tmp_path)
    model = load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))
    with pytest.raises(BadRequest, match="expected 4 features, got 5 — did you include the label"):
        model.validate(Batch(np.zeros((1, 5))), LIMIT)
    with pytest.raises(BadRequest, match="expected 4 features, got 3$"):
        model.validate(Batch(np.zeros((1, 3))), LIMIT)


def test_records_are_reordered_to_the_model_features(tmp_path):
    booster, features = _train(tmp_path)
    metadata = {"feature_names": ["a", "b", "c", "d"], "objective": "regression"}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    model = load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))
    batch = Batch(features[:, [3, 1, 0]], ("d", "b", "a"))
    values = model.validate(batch, LIMIT)
    np.testing.assert_array_equal(values[:, [0, 1, 3]], features[:, [0, 1, 3]])
    assert np.isnan(values[:, 2]).all()
    with pytest.raises(BadRequest, match="unknown feature\\(s\\) 'e'"):
        model.validate(Batch(np.zeros((1, 1)), ("e",)), LIMIT)


def test_output_kinds():
    assert output_kind("binary") == "binary"
    assert output_kind("multiclassova") == "multiclass"
    assert output_kind("poisson") == "regression"


def _named_model(tmp_path):
    _train(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"feature_names": ["age", "bmi", "bp", "s1"]}))
    return load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))


def test_records_fill_the_model_order_and_a_misspelt_name_gets_its_likely_intent(tmp_path):
    model = _named_model(tmp_path)
    values = model.validate(Batch(columns=("bp", "age"), records=[{"bp": 1.5, "age": None}, {"age": 2}]), LIMIT)
    np.testing.assert_array_equal(values, [[np.nan, np.nan, 1.5, np.nan], [2, np.nan, np.nan, np.nan]])
    with pytest.raises(BadRequest, match="'bmy' \\(did you mean 'bmi'\\?\\)"):
        model.validate(Batch(columns=("bmy",), records=[{"bmy": 1}]), LIMIT)


def test_records_are_checked_before_the_matrix_is_allocated(tmp_path):
    model = _named_model(tmp_path)
    many_keys = [{f"k{i}": 1.0} for i in range(200_000)]
    with pytest.raises(BadRequest, match="and 199990 more"):
        model.validate(Batch(columns=tuple(r.popitem()[0] for r in many_keys), records=[{}] * 200_000), LIMIT)
    with pytest.raises(PayloadTooLarge, match="2000000 records x 4 features"):
        model.validate(Batch(columns=(), records=[{}] * 2_000_000), LIMIT)


def test_damaged_model_text_is_refused_before_lightgbm_reads_it(tmp_path):
    _train(tmp_path)
    text = (tmp_path / "model.txt").read_bytes()
    check_model_text(text, tmp_path / "model.txt")  # the intact file passes
    end = text.index(b"end of trees")
    for cut in (len(text) // 7, len(text) // 3, end - 10, end + 5):
        with pytest.raises(ModelLoadError, match="incomplete|damaged"):
            check_model_text(text[:cut], tmp_path / "model.txt")
    (tmp_path / "model.txt").write_bytes(text[: len(text) // 3])
    with pytest.raises(ModelLoadError, match="incomplete|damaged"):
        load_model(tmp_path, LoadOptions(threads=1, derived_dir=tmp_path / "derived"))
    with pytest.raises(ModelLoadError, match="not a LightGBM text model"):
        check_model_text(b"hello", tmp_path / "x")


def test_confined_model_files_may_not_point_outside_the_root(tmp_path):
    outside = tmp_path / "outside"
    _train(outside)
    root = tmp_path / "models"
    (root / "m").mkdir(parents=True)
    (root / "m" / "model.txt").symlink_to(outside / "model.txt")
    with pytest.raises(ModelLoadError, match="points outside the models directory"):
        find_model_file(root / "m", root)
    assert find_model_file(root / "m")[0] == root / "m" / "model.txt"  # unconfined (single-model) still reads it
    (root / "loop").mkdir()
    (root / "loop" / "a.txt").symlink_to(root / "loop" / "a.txt")
    with pytest.raises(ModelLoadError, match="cannot be resolved"):
        find_model_file(root / "loop", root)


def test_compile_memory_estimate_counts_every_leaf_of_every_class(tmp_path):
    from lightgbm_container.compilation.artifact import FULL, QUICK, count_leaves, estimated_compile_mb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4))
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 7, "min_data_in_leaf": 2, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, rng.integers(0, 3, 500)), num_boost_round=5)
    leaves = sum(tree["num_leaves"] for tree in booster.dump_model()["tree_info"])
    assert leaves > 15 * 2 and count_leaves(booster.model_to_string().encode()) == leaves
    assert estimated_compile_mb(100_000, QUICK) < estimated_compile_mb(100_000, FULL) == 150 + 10_000
