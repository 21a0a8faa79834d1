import humanize


def test_exact_powers_move_to_the_next_unit():
    assert humanize.naturalsize(1000**2) == "1.0 MB"
    assert humanize.naturalsize(1000**3) == "1.0 GB"
    assert humanize.naturalsize(1024**2, binary=True) == "1.0 MiB"
    assert humanize.naturalsize(1024**3, gnu=True) == "1.0G"


def test_values_around_the_boundaries():
    assert humanize.naturalsize(999_999) == "1000.0 kB"
    assert humanize.naturalsize(1_000_001) == "1.0 MB"
    assert humanize.naturalsize(3000) == "3.0 kB"
