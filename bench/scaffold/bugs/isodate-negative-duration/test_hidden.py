from datetime import timedelta

from isodate import parse_duration


def test_negative_durations_without_years_or_months():
    assert parse_duration("-P1D") == timedelta(days=-1)
    assert parse_duration("-PT1H30M") == -timedelta(hours=1, minutes=30)
    assert parse_duration("-P2W") == timedelta(weeks=-2)


def test_positive_and_calendar_durations_unchanged():
    assert parse_duration("P1D") == timedelta(days=1)
    assert parse_duration("PT1H30M") == timedelta(hours=1, minutes=30)
    assert parse_duration("-P1Y").years == -1
