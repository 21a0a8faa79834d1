from parse import parse


def test_short_prefixed_numbers():
    assert parse("{:d}", "0xf")[0] == 15
    assert parse("{:d}", "0o7")[0] == 7
    assert parse("{:d}", "0b1")[0] == 1
    assert parse("{:d}", "-0xa")[0] == -10
    assert parse("value={:d}", "value=0x9")[0] == 9


def test_longer_numbers_unchanged():
    assert parse("{:d}", "0x1f")[0] == 31
    assert parse("{:d}", "0b101")[0] == 5
    assert parse("{:d}", "42")[0] == 42
    assert parse("{:d}", "07")[0] == 7
