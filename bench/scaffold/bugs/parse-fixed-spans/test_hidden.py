from parse import parse, search


def test_spans_of_positional_fields():
    r = parse("{} {}", "hello world")
    assert r.spans[0] == (0, 5)
    assert r.spans[1] == (6, 11)


def test_spans_of_mixed_fields():
    r = parse("{name}: {:d} items", "box: 12 items")
    assert r.spans["name"] == (0, 3)
    assert r.spans[0] == (5, 7)


def test_spans_with_search():
    r = search("age {:d}", "name bob age 42 years")
    assert r.spans[0] == (13, 15)
