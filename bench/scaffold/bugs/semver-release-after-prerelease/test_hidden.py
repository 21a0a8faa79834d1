from semver import Version, compare


def test_release_is_greater_than_its_prereleases():
    assert Version.parse("1.0.0") > Version.parse("1.0.0-rc.1")
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0")
    assert compare("2.3.4", "2.3.4-beta.2") == 1
    assert compare("2.3.4-beta.2", "2.3.4") == -1


def test_sorting_and_max():
    versions = ["1.0.0", "1.0.0-rc.2", "1.0.0-alpha", "0.9.0"]
    assert max(versions, key=Version.parse) == "1.0.0"
    assert sorted(versions, key=Version.parse) == ["0.9.0", "1.0.0-alpha", "1.0.0-rc.2", "1.0.0"]


def test_prerelease_order_unchanged():
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0-alpha.1") < Version.parse("1.0.0-beta")
    assert Version.parse("1.0.0-rc.1") == Version.parse("1.0.0-rc.1")
