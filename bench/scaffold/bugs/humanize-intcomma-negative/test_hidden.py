import humanize


def test_negative_integers_get_separators():
    assert humanize.intcomma(-1234567) == "-1,234,567"
    assert humanize.intcomma(-1000) == "-1,000"
    assert humanize.intcomma("-1234567") == "-1,234,567"


def test_negative_floats_get_separators():
    assert humanize.intcomma(-1234567.25) == "-1,234,567.25"
    assert humanize.intcomma(-1234.5, 2) == "-1,234.50"


def test_small_and_positive_numbers_unchanged():
    assert humanize.intcomma(-999) == "-999"
    assert humanize.intcomma(1234567) == "1,234,567"
