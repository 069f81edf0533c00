"""Reading a channel: the rules hold on both paths, into Arrow (numbers) and pandas' (text)."""

from functools import partial

import numpy as np
import pytest

from lightgbm_container.errors import TrainingError
from lightgbm_container.training.channels import list_data_files, read_channel
from support import pyarrow_module


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(params=["pandas", "arrow"])
def read(request):
    """read_channel on one path (the Arrow path hands over what it cannot read exactly to pandas)."""
    if request.param == "arrow":
        pyarrow_module()
    return partial(read_channel, arrow=request.param == "arrow")


def _matrix(features) -> np.ndarray:
    if hasattr(features, "column_names"):  # an Arrow table
        return np.column_stack([column.to_numpy() for column in features.columns])
    return np.asarray(features)


def test_header_is_detected_and_label_chosen_by_name(tmp_path, read):
    _write(tmp_path / "a.csv", "x,y,price\n1,2,10\n3,4,20\n")
    table = read("train", tmp_path, "price", None)
    assert table.has_header and table.feature_names == ["x", "y"] and table.label_name == "price"
    np.testing.assert_array_equal(table.labels, [10, 20])


def test_no_header_first_row_is_data(tmp_path, read):
    _write(tmp_path / "a.csv", "1,2,10\n3,4,20\n")
    table = read("train", tmp_path, "last", None)
    assert not table.has_header and table.rows == 2
    table = read("train", tmp_path, "first", None)
    np.testing.assert_array_equal(table.labels, [1, 3])
    assert read("train", tmp_path, 1, None).label_index == 1


def test_header_can_be_forced(tmp_path, read):
    _write(tmp_path / "a.csv", "1,2,3\n4,5,6\n")
    assert read("train", tmp_path, "last", True).rows == 1


def test_all_csv_files_are_read_hidden_and_other_files_skipped(tmp_path, read):
    _write(tmp_path / "part-1.csv", "1,2\n")
    _write(tmp_path / "sub" / "part-2.csv", "3,4\n")
    _write(tmp_path / ".hidden.csv", "9,9\n")
    _write(tmp_path / "README.txt", "hello")
    kind, files = list_data_files(tmp_path, None, "train")
    assert kind == "csv" and [p.name for p in files] == ["part-1.csv", "part-2.csv"]
    assert read("train", tmp_path, "last", None).rows == 2
    assert len(list_data_files(tmp_path, "text/csv", "train")[1]) == 3  # the channel says every file is CSV


def test_non_numeric_cell_is_named(tmp_path, read):
    _write(tmp_path / "a.csv", "1,2,3\n4,five,6\n")
    with pytest.raises(TrainingError, match=r"train/a.csv line 2, column 2: 'five' is not a number"):
        read("train", tmp_path, "last", None)


def test_missing_labels_are_refused_not_dropped(tmp_path, read):
    _write(tmp_path / "a.csv", "1,2,3\n4,5,\n")
    with pytest.raises(TrainingError, match="1 row\\(s\\) have no label"):
        read("train", tmp_path, "last", None)


def test_missing_feature_values_are_kept_as_nan(tmp_path, read):
    _write(tmp_path / "a.csv", "1,,3\n4,nan,6\n")
    table = read("train", tmp_path, "last", None)
    assert table.rows == 2 and np.isnan(_matrix(table.features)[:, 1]).all()


def test_mismatched_files_and_bad_label_column(tmp_path, read):
    _write(tmp_path / "a.csv", "1,2,3\n")
    _write(tmp_path / "b.csv", "1,2\n")
    with pytest.raises(TrainingError, match="b.csv has 2 columns but train/a.csv has 3"):
        read("train", tmp_path, "last", None)
    (tmp_path / "b.csv").unlink()
    with pytest.raises(TrainingError, match="no header row"):
        read("train", tmp_path, "price", None)
    with pytest.raises(TrainingError, match="out of range"):
        read("train", tmp_path, 7, None)


def test_empty_or_missing_channel(tmp_path):
    with pytest.raises(TrainingError, match="channel 'train' is missing"):
        read_channel("train", tmp_path / "nope", "last", None)
    _write(tmp_path / "data.json", "x")
    with pytest.raises(TrainingError, match="no CSV files .* found data.json"):
        read_channel("train", tmp_path, "last", None)


def test_text_columns_become_categorical_features_with_their_categories(tmp_path):
    _write(tmp_path / "a.csv", "x,color,y\n1,red,10\n2,blue,20\n3,red,30\n,,40\n")
    table = read_channel("train", tmp_path, "y", None)
    assert table.categorical == ["color"] and table.categories == {"color": ["blue", "red"]}
    assert list(table.features["color"].cat.codes) == [1, 0, 1, -1]  # missing stays missing


def test_a_stray_string_in_a_numeric_column_is_an_error_not_a_category(tmp_path, read):
    _write(tmp_path / "a.csv", "x,y\n1,10\n2,20\n3,30\nthree,40\n")
    _write(tmp_path / "b.csv", "x,y\n1,10\n")
    with pytest.raises(
        TrainingError, match=r"train/a.csv line 5, column 1 \('x'\): 'three' is not a number.*categorical_feature"
    ):
        read("train", tmp_path, "y", None)


def test_categorical_feature_by_name_or_index_and_validation_uses_train_categories(tmp_path):
    _write(tmp_path / "train" / "a.csv", "x,code,y\n1,7,10\n2,8,20\n3,seven,30\n4,9,40\n")
    _write(tmp_path / "validation" / "a.csv", "x,code,y\n1,7,10\n2,purple,20\n")
    for declared in (["code"], [1]):
        train = read_channel("train", tmp_path / "train", "y", None, categorical=declared)
        assert train.categories == {"code": ["7", "8", "9", "seven"]}
    validation = read_channel("validation", tmp_path / "validation", "y", None, reference=train)
    assert validation.features["code"].cat.categories.tolist() == ["7", "8", "9", "seven"]
    assert list(validation.features["code"].cat.codes) == [0, -1]  # unseen in training -> missing
    with pytest.raises(TrainingError, match="categorical_feature 'cod' is not a feature; did you mean 'code'"):
        read_channel("train", tmp_path / "train", "y", None, categorical=["cod"])
    with pytest.raises(TrainingError, match="categorical_feature 5 is out of range"):
        read_channel("train", tmp_path / "train", "y", None, categorical=[5])


def test_text_labels_are_kept_for_classification(tmp_path):
    _write(tmp_path / "a.csv", "x,label\n1,yes\n2,no\n3,yes\n")
    table = read_channel("train", tmp_path, "label", None)
    assert table.labels.tolist() == ["yes", "no", "yes"]


def test_a_text_label_under_a_regression_objective_names_its_line(tmp_path, read):
    from lightgbm_container.training.labels import encode_labels

    _write(tmp_path / "a.csv", "x,y\n1,2\n2,3\n3,high\n4,low\n5,mid\n")
    table = read("train", tmp_path, "y", None)
    with pytest.raises(TrainingError, match=r"train/a.csv line 4, column 2 \(the label\): 'high' is not a number"):
        encode_labels("regression", table.labels, {}, table)


def test_a_nan_label_stored_as_a_number_in_parquet_is_a_missing_label(tmp_path):
    pa = pyarrow_module()
    pa.parquet.write_table(pa.table({"x": [1.0, 2.0, 3.0], "y": [1.0, float("nan"), 3.0]}), tmp_path / "a.parquet")
    with pytest.raises(TrainingError, match="1 row\\(s\\) have no label in column 1 \\('y'\\), first at data row 2"):
        read_channel("train", tmp_path, "y", None)
