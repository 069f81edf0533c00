"""One Accept rule (RFC 9110 section 12.5.1) for the built-in handler, scripts and custom services."""

import pytest

from lightgbm_container import codecs
from lightgbm_container.contract.negotiation import negotiate, parse_accept, user_code_accept

OFFERED = codecs.OFFERED


@pytest.mark.parametrize(
    "accept, default, expected",
    [
        (None, "text/csv", "text/csv"),
        ("", "application/json", "application/json"),
        ("*/*", "text/csv", "text/csv"),
        ("*", "application/x-npy", "application/x-npy"),
        ("application/*", "text/csv", "application/json"),  # was answered in CSV, which it does not accept
        ("application/*", "application/jsonlines", "application/jsonlines"),  # the default when it fits the range
        ("text/*", "application/json", "text/csv"),
        ("application/json", "text/csv", "application/json"),
        ("application/json;verbose", "text/csv", "application/json"),
        ("APPLICATION/JSON", "text/csv", "application/json"),
        ("application/x-ndjson", "text/csv", "application/x-ndjson"),  # an alias, understood when named
        ("text/csv;q=0.2, application/json", "text/csv", "application/json"),
        ("application/json, text/csv", "text/csv", "application/json"),  # equal q: the one written first
        ("text/csv;q=0.5, */*", "text/csv", "application/json"),  # CSV less wanted than anything else
        ("*/*, text/csv;q=0", "text/csv", "application/json"),  # q=0 excludes, even under a wildcard
        ("image/png, */*;q=0.1", "text/csv", "text/csv"),
        ("*/*;q=0.1, application/*;q=0.9", "text/csv", "application/json"),
        ("text/csv;q=abc, application/json;q=0.1", "text/csv", "application/json"),  # an unreadable q counts as 0
        ("image/png", "text/csv", None),
        ("text/csv;q=0", "text/csv", None),
        ("*/*;q=0", "text/csv", None),
    ],
)
def test_negotiate(accept, default, expected):
    assert negotiate(accept, OFFERED, default) == expected


def test_parse_keeps_the_order_and_the_text_as_written():
    ranges = parse_accept("application/json;verbose, text/*;q=0.5, nonsense, *")
    assert [(r.media_type, r.quality, r.text) for r in ranges] == [
        ("application/json", 1.0, "application/json;verbose"),
        ("text/*", 0.5, "text/*;q=0.5"),
        ("*/*", 1.0, "*"),
    ]


@pytest.mark.parametrize(
    "accept, handed_over, answer_type",
    [
        (None, "application/json", "application/json"),
        ("*/*", "application/json", "application/json"),
        (
            "application/*",
            "application/json",
            "application/json",
        ),  # the toolkit passed it on, which its encoder refused
        ("text/csv", "text/csv", "text/csv"),
        ("application/json;verbose", "application/json;verbose", "application/json"),  # as sent: parameters kept
        ("text/csv, */*;q=0.1", "text/csv, */*;q=0.1", "text/csv"),
        ("text/*", "text/*", "application/json"),  # the default does not fit: as sent, user code decides
    ],
)
def test_user_code_gets_the_header_as_sent_unless_it_names_no_type(accept, handed_over, answer_type):
    assert user_code_accept(accept, "application/json") == (handed_over, answer_type)
