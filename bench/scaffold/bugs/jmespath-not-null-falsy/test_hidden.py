import jmespath


def test_not_null_keeps_falsy_values():
    assert jmespath.search("not_null(a, b)", {"a": 0, "b": 5}) == 0
    assert jmespath.search("not_null(a, b)", {"a": False, "b": "x"}) is False
    assert jmespath.search("not_null(a, b)", {"a": "", "b": "x"}) == ""
    assert jmespath.search("not_null(a, b)", {"a": [], "b": [1]}) == []


def test_not_null_skips_nulls():
    assert jmespath.search("not_null(a, b, c)", {"a": None, "c": 3}) == 3
    assert jmespath.search("not_null(a, b)", {}) is None
