import pytest

from lightgbm_container.errors import TrainingError
from lightgbm_container.training.hyperparameters import decode_value, parse_hyperparameters


@pytest.mark.parametrize(
    "raw, value",
    [
        ("0.05", 0.05),
        ("100", 100),
        ('"gbdt"', "gbdt"),
        ("gbdt", "gbdt"),
        ("True", True),
        ("true", True),
        ("False", False),
        ("[1, 2]", [1, 2]),
    ],
)
def test_both_sdk_encodings_decode_to_the_same_value(raw, value):
    assert decode_value(raw) == value


def test_aliases_map_to_canonical_names_and_sagemaker_keys_are_ignored():
    config = parse_hyperparameters(
        {
            "eta": "0.1",
            "n_estimators": "50",
            "early_stopping_rounds": "5",
            "objective": '"binary"',
            "sagemaker_program": '"x.py"',
            "_tuning_objective_metric": "validation:auc",
        }
    )
    assert config.params == {"learning_rate": 0.1, "objective": "binary"}
    assert config.num_boost_round == 50 and config.early_stopping_rounds == 5
    assert set(config.ignored) == {"sagemaker_program", "_tuning_objective_metric"}


def test_unknown_parameter_is_named_with_a_suggestion():
    with pytest.raises(TrainingError, match="unknown hyperparameter 'lerning_rate'; did you mean 'learning_rate'"):
        parse_hyperparameters({"lerning_rate": "0.1"})


def test_same_parameter_twice_through_aliases():
    with pytest.raises(TrainingError, match="'eta' and 'learning_rate' both set"):
        parse_hyperparameters({"eta": "0.1", "learning_rate": "0.2"})


@pytest.mark.parametrize("bad", ["0", "-3", "2.5", "abc", "True"])
def test_num_boost_round_must_be_a_positive_whole_number(bad):
    with pytest.raises(TrainingError, match="num_boost_round"):
        parse_hyperparameters({"num_boost_round": bad})


def test_label_column_and_header():
    assert parse_hyperparameters({"label_column": "0"}).label_column == 0
    assert parse_hyperparameters({"label_column": '"price"'}).label_column == "price"
    assert parse_hyperparameters({}).label_column == "last"
    assert parse_hyperparameters({"header": "True"}).header is True
    assert parse_hyperparameters({"header": "auto"}).header is None
    with pytest.raises(TrainingError, match="header"):
        parse_hyperparameters({"header": "maybe"})


@pytest.mark.parametrize(
    "typo, canonical",
    [
        ("num_leafs", "num_leaves"),
        ("lerning_rate", "learning_rate"),
        ("n_estimator", "num_iterations"),
        ("labl_column", "label_column"),
    ],
)
def test_a_misspelt_name_is_answered_with_the_canonical_name(typo, canonical):
    with pytest.raises(TrainingError, match=f"did you mean '{canonical}'\\?") as error:
        parse_hyperparameters({typo: "1"})
    if typo == "num_leafs":
        assert "also accepts the alias 'num_leaf'" in str(error.value)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0,3", (0, 3)),
        ("name:color,size", ("color", "size")),
        ("color, size", ("color", "size")),
        ("[1, 2]", (1, 2)),
        ("2", (2,)),
        ('"name:color"', ("color",)),
    ],
)
def test_categorical_feature_spellings(raw, expected):
    config = parse_hyperparameters({"categorical_feature": raw})
    assert config.categorical_feature == expected and "categorical_feature" not in config.params
    assert parse_hyperparameters({"cat_feature": raw}).categorical_feature == expected  # LightGBM's alias


def test_checkpoint_intervals_are_ours_not_lightgbm_and_checked():
    config = parse_hyperparameters({"checkpoint_rounds": "5", "checkpoint_seconds": "2.5", "num_leaves": "7"})
    assert (config.checkpoint_rounds, config.checkpoint_seconds, config.params) == (5, 2.5, {"num_leaves": 7})
    defaults = parse_hyperparameters({})
    assert (defaults.checkpoint_rounds, defaults.checkpoint_seconds) == (50, 120.0)
    with pytest.raises(TrainingError, match=r"checkpoint_rounds=0 must be a whole number >= 1"):
        parse_hyperparameters({"checkpoint_rounds": "0"})
    with pytest.raises(TrainingError, match=r"checkpoint_seconds=-1 must be a number of seconds > 0"):
        parse_hyperparameters({"checkpoint_seconds": "-1"})
    with pytest.raises(TrainingError, match=r"did you mean 'checkpoint_rounds'"):
        parse_hyperparameters({"checkpoint_round": "5"})
