"""What counts as a missing value in text input: the same words in training data and requests."""

#: CSV fields read as "missing" (NaN, which LightGBM routes like its training NaNs), case-insensitive.
CSV_MISSING_TOKENS = ("", "nan", "na", "n/a", "null", "none")
#: The same, spelled out for pandas' ``na_values`` (which compares exactly).
PANDAS_NA_VALUES = [*CSV_MISSING_TOKENS, *(token.upper() for token in CSV_MISSING_TOKENS), "NaN", "N/A"]
#: How every pandas ``read_csv`` here reads missing values: these tokens and no others (pandas'
#: defaults add "#N/A", "<NA>", "-nan", ..., which the exact request parser does not take).
PANDAS_MISSING_OPTIONS = {"keep_default_na": False, "na_values": PANDAS_NA_VALUES}

_CSV_MISSING_FIELDS = frozenset(token.encode() for token in CSV_MISSING_TOKENS)


def is_missing_csv_field(field: bytes) -> bool:
    """Whether a raw CSV field is one of the missing-value tokens (surrounding spaces ignored)."""
    return field.strip().lower() in _CSV_MISSING_FIELDS
