import jmespath


def test_merge_does_not_modify_its_arguments():
    data = {"defaults": {"x": 1, "y": 1}, "override": {"x": 2}}
    assert jmespath.search("merge(defaults, override)", data) == {"x": 2, "y": 1}
    assert data == {"defaults": {"x": 1, "y": 1}, "override": {"x": 2}}


def test_merge_results():
    assert jmespath.search("merge(`{}`, `{}`)", {}) == {}
    assert jmespath.search("merge(a)", {"a": {"k": 1}}) == {"k": 1}
    data = {"a": {"k": 1}, "b": {"l": 2}, "c": {"k": 3}}
    assert jmespath.search("merge(a, b, c)", data) == {"k": 3, "l": 2}
    assert data["a"] == {"k": 1}
