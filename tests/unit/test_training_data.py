import numpy as np
import pytest

from lightgbm_container.errors import TrainingError
from lightgbm_container.training.channels import list_csv_files, read_channel


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_header_is_detected_and_label_chosen_by_name(tmp_path):
    _write(tmp_path / "a.csv", "x,y,price\n1,2,10\n3,4,20\n")
    table = read_channel("train", tmp_path, "price", None)
    assert table.has_header and table.feature_names == ["x", "y"] and table.label_name == "price"
    np.testing.assert_array_equal(table.labels, [10, 20])


def test_no_header_first_row_is_data(tmp_path):
    _write(tmp_path / "a.csv", "1,2,10\n3,4,20\n")
    table = read_channel("train", tmp_path, "last", None)
    assert not table.has_header and table.rows == 2
    table = read_channel("train", tmp_path, "first", None)
    np.testing.assert_array_equal(table.labels, [1, 3])
    assert read_channel("train", tmp_path, 1, None).label_index == 1


def test_header_can_be_forced(tmp_path):
    _write(tmp_path / "a.csv", "1,2,3\n4,5,6\n")
    assert read_channel("train", tmp_path, "last", True).rows == 1


def test_all_csv_files_are_read_hidden_and_other_files_skipped(tmp_path):
    _write(tmp_path / "part-1.csv", "1,2\n")
    _write(tmp_path / "sub" / "part-2.csv", "3,4\n")
    _write(tmp_path / ".hidden.csv", "9,9\n")
    _write(tmp_path / "README.txt", "hello")
    assert [p.name for p in list_csv_files(tmp_path)] == ["part-1.csv", "part-2.csv"]
    assert read_channel("train", tmp_path, "last", None).rows == 2
    assert len(list_csv_files(tmp_path, "text/csv")) == 3  # the channel says every file is CSV


def test_non_numeric_cell_is_named(tmp_path):
    _write(tmp_path / "a.csv", "1,2,3\n4,five,6\n")
    with pytest.raises(TrainingError, match=r"train/a.csv line 2, column 2: 'five' is not a number"):
        read_channel("train", tmp_path, "last", None)


def test_missing_labels_are_refused_not_dropped(tmp_path):
    _write(tmp_path / "a.csv", "1,2,3\n4,5,\n")
    with pytest.raises(TrainingError, match="1 row\\(s\\) have no label"):
        read_channel("train", tmp_path, "last", None)


def test_missing_feature_values_are_kept_as_nan(tmp_path):
    _write(tmp_path / "a.csv", "1,,3\n4,nan,6\n")
    table = read_channel("train", tmp_path, "last", None)
    assert table.rows == 2 and np.isnan(table.features[:, 1]).all()


def test_mismatched_files_and_bad_label_column(tmp_path):
    _write(tmp_path / "a.csv", "1,2,3\n")
    _write(tmp_path / "b.csv", "1,2\n")
    with pytest.raises(TrainingError, match="b.csv has 2 columns but train/a.csv has 3"):
        read_channel("train", tmp_path, "last", None)
    (tmp_path / "b.csv").unlink()
    with pytest.raises(TrainingError, match="no header row"):
        read_channel("train", tmp_path, "price", None)
    with pytest.raises(TrainingError, match="out of range"):
        read_channel("train", tmp_path, 7, None)


def test_empty_or_missing_channel(tmp_path):
    with pytest.raises(TrainingError, match="channel 'train' is missing"):
        read_channel("train", tmp_path / "nope", "last", None)
    _write(tmp_path / "data.parquet", "x")
    with pytest.raises(TrainingError, match="no CSV files .* found data.parquet"):
        read_channel("train", tmp_path, "last", None)
