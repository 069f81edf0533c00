"""What counts as a missing value in text input: the same words in training data and requests."""

#: CSV fields read as "missing" (NaN, which LightGBM routes like its training NaNs), case-insensitive.
CSV_MISSING_TOKENS = ("", "nan", "na", "n/a", "null", "none")
#: The same, spelled out for pandas' ``na_values`` (which compares exactly).
PANDAS_NA_VALUES = [*CSV_MISSING_TOKENS, *(token.upper() for token in CSV_MISSING_TOKENS), "NaN", "N/A"]
