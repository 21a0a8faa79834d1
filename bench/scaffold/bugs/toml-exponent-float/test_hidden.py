import toml


def test_exponent_floats_without_a_fraction():
    assert toml.loads("x = 1e6") == {"x": 1e6}
    assert toml.loads("x = 5E+22") == {"x": 5e22}
    assert toml.loads("x = -2e-3") == {"x": -2e-3}
    assert isinstance(toml.loads("x = 1e6")["x"], float)


def test_other_numbers_unchanged():
    assert toml.loads("x = 6.626e-34") == {"x": 6.626e-34}
    assert toml.loads("x = 3.5") == {"x": 3.5}
    assert toml.loads("x = 0xdead_beef") == {"x": 0xDEADBEEF}
    assert toml.loads("x = 1_000") == {"x": 1000}
