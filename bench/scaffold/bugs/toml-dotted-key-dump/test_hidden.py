import toml


def test_keys_with_dots_round_trip():
    data = {"versions": {"1.0": "old", "2.0": "new"}}
    assert toml.loads(toml.dumps(data)) == data
    assert toml.loads(toml.dumps({"a.b": 1})) == {"a.b": 1}


def test_table_names_with_dots_round_trip():
    data = {"example.com": {"port": 80}}
    assert toml.loads(toml.dumps(data)) == data


def test_bare_keys_stay_bare():
    assert toml.dumps({"plain_key-1": 1}) == "plain_key-1 = 1\n"
