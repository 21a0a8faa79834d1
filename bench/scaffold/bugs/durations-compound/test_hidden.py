import pytest

from durations import format_duration, parse_duration


def test_compound_durations_add_up():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1d2h") == 93600
    assert parse_duration("1d2h3m4s") == 93784


def test_round_trip():
    for seconds in [45, 5400, 93600, 93784, 86400]:
        assert parse_duration(format_duration(seconds)) == seconds


def test_single_units_and_errors_unchanged():
    assert parse_duration("45s") == 45
    with pytest.raises(ValueError):
        parse_duration("1x")
