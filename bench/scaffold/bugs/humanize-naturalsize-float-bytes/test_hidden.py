import humanize


def test_small_float_sizes_are_whole_bytes():
    assert humanize.naturalsize(1.123456789) == "1 Bytes"
    assert humanize.naturalsize(300.5) == "300 Bytes"
    assert humanize.naturalsize(2.7, binary=True) == "2 Bytes"
    assert humanize.naturalsize(1.123456789, gnu=True) == "1B"
    assert humanize.naturalsize("512.25") == "512 Bytes"


def test_other_sizes_unchanged():
    assert humanize.naturalsize(300) == "300 Bytes"
    assert humanize.naturalsize(1.123456789 * 1000) == "1.1 kB"
    assert humanize.naturalsize(3000, gnu=True) == "2.9K"
