from semver import Version


def test_next_minor_of_a_minor_prerelease_is_that_release():
    assert str(Version.parse("1.2.0-rc.1").next_version("minor")) == "1.2.0"
    assert str(Version.parse("0.5.0-alpha").next_version("minor")) == "0.5.0"
    assert str(Version.parse("1.2.0+build.7").next_version("minor")) == "1.2.0"


def test_other_parts_unchanged():
    assert str(Version.parse("1.2.3-rc.1").next_version("minor")) == "1.3.0"
    assert str(Version.parse("1.2.3-rc.1").next_version("patch")) == "1.2.3"
    assert str(Version.parse("2.0.0-rc.1").next_version("major")) == "2.0.0"
    assert str(Version.parse("1.2.0").next_version("minor")) == "1.3.0"
