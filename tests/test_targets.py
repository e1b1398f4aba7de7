import pytest

from codemod.errors import TargetError
from codemod.targets import load_target

REQUIRED = [
    "x86_64-unknown-linux-musl", "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-musl", "aarch64-unknown-linux-gnu",
    "armv7-unknown-linux-musleabihf", "armv7-unknown-linux-gnueabihf", "i686-unknown-linux-musl", "i686-unknown-linux-gnu",
    "x86_64-apple-darwin", "aarch64-apple-darwin", "x86_64-pc-windows-msvc", "x86_64-pc-windows-gnu", "wasm32-unknown-unknown",
]


@pytest.mark.parametrize("triple", REQUIRED)
def test_shipped_facts(triple):
    t = load_target(triple)
    assert ("target_arch", triple.split("-")[0].replace("armv7", "arm").replace("i686", "x86")) in t.pairs


@pytest.mark.parametrize("expr,musl,windows,mac", [
    ("cfg(unix)", True, False, True),
    ("cfg(windows)", False, True, False),
    ('cfg(target_os = "linux")', True, False, False),
    ('cfg(target_env = "musl")', True, False, False),
    ('cfg(not(any(target_os = "windows", target_os = "macos", target_os = "ios")))', True, False, False),
    ('cfg(all(unix, not(target_os = "macos")))', True, False, False),
    ('cfg(any(target_os = "macos", target_os = "ios"))', False, False, True),
    ('cfg(target_family = "unix")', True, False, True),
    ('cfg(target_pointer_width = "64")', True, True, True),
    ('cfg(target_endian = "little")', True, True, True),
    ('cfg(target_vendor = "apple")', False, False, True),
    ('cfg(target_feature = "crt-static")', True, False, False),
    ('cfg(all())', True, True, True),
    ('cfg(any())', False, False, False),
    ('cfg(tokio_taskdump)', False, False, False),
    ("x86_64-unknown-linux-musl", True, False, False),
    ("x86_64-pc-windows-msvc", False, True, False),
])
def test_cfg_expressions(expr, musl, windows, mac):
    assert load_target("x86_64-unknown-linux-musl").matches(expr) is musl
    assert load_target("x86_64-pc-windows-msvc").matches(expr) is windows
    assert load_target("aarch64-apple-darwin").matches(expr) is mac


def test_unknown_target_suggests_close_names():
    with pytest.raises(TargetError, match="did you mean `x86_64-unknown-linux-musl`"):
        load_target("x86_64-unknown-linux-mus")


@pytest.mark.parametrize("bad", ["cfg(unix", "cfg(not(unix, windows))", 'cfg(target_os = )'])
def test_invalid_cfg(bad):
    with pytest.raises(TargetError):
        load_target("x86_64-unknown-linux-musl").matches(bad)
