from datetime import date

from isodate import Duration, parse_duration


def test_end_of_january_plus_one_month_in_century_years():
    assert date(2100, 1, 31) + Duration(months=1) == date(2100, 2, 28)
    assert date(1900, 1, 31) + parse_duration("P1M") == date(1900, 2, 28)
    assert date(2100, 3, 31) - Duration(months=1) == date(2100, 2, 28)


def test_leap_years_unchanged():
    assert date(2000, 1, 31) + Duration(months=1) == date(2000, 2, 29)
    assert date(2024, 1, 31) + Duration(months=1) == date(2024, 2, 29)
    assert date(2023, 1, 31) + Duration(months=1) == date(2023, 2, 28)
