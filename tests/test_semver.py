"""Cargo's requirement syntax, checked against the examples in cargo's reference
("Specifying Dependencies": caret, tilde, wildcard, comparison and multiple requirements)."""

import pytest

from codemod.errors import CodemodError
from codemod.semver import parse_req, parse_version

# requirement -> (the range the reference gives it, as lowest included / first excluded version)
REFERENCE = {
    "^1.2.3": ("1.2.3", "2.0.0"),
    "^1.2": ("1.2.0", "2.0.0"),
    "^1": ("1.0.0", "2.0.0"),
    "^0.2.3": ("0.2.3", "0.3.0"),
    "^0.2": ("0.2.0", "0.3.0"),
    "^0.0.3": ("0.0.3", "0.0.4"),
    "^0.0": ("0.0.0", "0.1.0"),
    "^0": ("0.0.0", "1.0.0"),
    "1.2.3": ("1.2.3", "2.0.0"),        # a bare requirement is a caret requirement
    "0.2": ("0.2.0", "0.3.0"),
    "~1.2.3": ("1.2.3", "1.3.0"),
    "~1.2": ("1.2.0", "1.3.0"),
    "~1": ("1.0.0", "2.0.0"),
    "1.*": ("1.0.0", "2.0.0"),
    "1.2.*": ("1.2.0", "1.3.0"),
    ">= 1.2, < 1.5": ("1.2.0", "1.5.0"),
    "=1.2.3": ("1.2.3", "1.2.4"),
    "=1.2": ("1.2.0", "1.3.0"),
}

VERSIONS = ["0.0.0", "0.0.3", "0.0.4", "0.1.0", "0.2.0", "0.2.3", "0.2.9", "0.3.0", "0.9.9", "1.0.0", "1.1.9",
            "1.2.0", "1.2.2", "1.2.3", "1.2.4", "1.2.99", "1.3.0", "1.4.9", "1.5.0", "1.99.0", "2.0.0", "3.1.0"]


@pytest.mark.parametrize("req", REFERENCE)
def test_reference_ranges(req):
    low, high = (parse_version(v) for v in REFERENCE[req])
    r = parse_req(req)
    for text in VERSIONS:
        v = parse_version(text)
        assert r.matches(v) == (low <= v < high), (req, text)


@pytest.mark.parametrize("req,yes,no", [
    ("*", ["0.0.1", "1.0.0", "99.0.0"], ["1.0.0-alpha"]),
    ("> 1", ["2.0.0"], ["1.9.9", "1.0.0"]),
    ("> 1.2", ["1.3.0"], ["1.2.9"]),
    ("> 1.2.3", ["1.2.4"], ["1.2.3"]),
    ("< 2", ["1.9.9"], ["2.0.0"]),
    ("<= 1.2", ["1.2.9"], ["1.3.0"]),
    (">=0.9.55", ["0.9.91", "1.0.0"], ["0.9.54"]),
    ("^111", ["111.27.0+1.1.1v"], ["300.1.3+3.1.2", "110.0.0"]),
    ("=0.3.28", ["0.3.28"], ["0.3.29"]),
    ("1.x", ["1.5.0"], ["2.0.0"]),
])
def test_comparators(req, yes, no):
    r = parse_req(req)
    assert all(r.matches(parse_version(v)) for v in yes)
    assert not any(r.matches(parse_version(v)) for v in no)


def test_pre_releases_match_only_when_asked_for_on_the_same_version():
    assert not parse_req("1.0").matches(parse_version("1.0.0-alpha"))
    assert parse_req(">=1.0.0-alpha").matches(parse_version("1.0.0-alpha.2"))
    assert parse_req("^1.2.3-alpha").matches(parse_version("1.2.3-beta"))
    assert not parse_req("^1.2.3-alpha").matches(parse_version("1.3.0-beta"))
    assert parse_req("^1.2.3-alpha").matches(parse_version("1.3.0"))
    assert not parse_req("^0.102").matches(parse_version("0.102.0-alpha.0"))


def test_version_order_and_lines():
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    assert sorted(order, key=parse_version) == order      # the semver spec's own example
    assert parse_version("0.10.56").compat_line == (0, 10)
    assert parse_version("0.0.3").compat_line == (0, 0, 3)
    assert parse_version("111.27.0+1.1.1v").compat_line == (111,)
    assert parse_version("111.27.0+1.1.1v").build == "1.1.1v"


@pytest.mark.parametrize("bad", ["1.2.3.4", "^", "latest", ">=1.2.x-pre"])
def test_invalid(bad):
    with pytest.raises(CodemodError):
        parse_req(bad)
