import humanize


def test_teens_above_one_hundred():
    assert humanize.ordinal(111) == "111th"
    assert humanize.ordinal(112) == "112th"
    assert humanize.ordinal(113) == "113th"
    assert humanize.ordinal(1011) == "1011th"
    assert humanize.ordinal(2012) == "2012th"


def test_other_ordinals_unchanged():
    assert humanize.ordinal(11) == "11th"
    assert humanize.ordinal(101) == "101st"
    assert humanize.ordinal(122) == "122nd"
    assert humanize.ordinal(1003) == "1003rd"
