import humanize


def test_one_byte_given_as_float_or_string():
    assert humanize.naturalsize(1.0) == "1 Byte"
    assert humanize.naturalsize("1") == "1 Byte"
    assert humanize.naturalsize(-1.0) == "-1 Byte"
    assert humanize.naturalsize(1.0, binary=True) == "1 Byte"


def test_other_sizes_unchanged():
    assert humanize.naturalsize(1) == "1 Byte"
    assert humanize.naturalsize(1.5) == "1 Bytes"
    assert humanize.naturalsize(1.0, gnu=True) == "1B"
    assert humanize.naturalsize(2000) == "2.0 kB"
