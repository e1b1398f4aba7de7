import os
import stat

import pytest

from codemod.errors import TargetError
from codemod.targets import HOST_TARGET, RustFlags, host_triple, load_target, probe_target, read_rustflags

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
    # cargo's probe names the proc-macro crate type: no crt-static without -C target-feature=+crt-static
    ('cfg(target_feature = "crt-static")', False, False, False),
    # cargo's probe runs without the profile's flags (also for --release)
    ("cfg(debug_assertions)", True, True, True),
    ("cfg(not(debug_assertions))", False, False, False),
    ("cfg(true)", True, True, True),
    ("cfg(false)", False, False, False),
    ("cfg(r#true)", True, True, True),
    ("cfg(not(false))", True, True, True),
    ("cfg(any(false, unix))", True, False, True),
    ('cfg(true = "x")', False, False, False),
    ("cfg(r#unix)", True, False, True),
    ("cfg(all(unix,))", True, False, True),
    ("cfg(  all( unix , not( windows ) ) )", True, False, True),
    ("cfg(test)", False, False, False),
    ("cfg(proc_macro)", False, False, False),
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


# cargo 1.95's messages for the same manifests ("failed to parse `…` as a cfg expression: …")
@pytest.mark.parametrize("bad,message", [
    ("cfg(target_os = linux)", "`target_os = linux` as a cfg expression: expected a string, found an identifier"),
    ("cfg(target_os = )", "expected a string, but cfg expression ended"),
    ("cfg(any(target_os = ))", "expected a string, found `)`"),
    ("cfg(target_os =", "invalid target specifier: unexpected `(` character, cfg expressions must start with `cfg(`"),
    ('cfg(version("1.80"))', 'unexpected content `("1.80")` found after cfg expression'),
    ("cfg(not(unix,))", "`not(unix,)` as a cfg expression: expected `)`, found `,`"),
    ("cfg(all)", "expected `(`, but cfg expression ended"),
    ("cfg(unix windows)", "unexpected content `windows` found after cfg expression"),
    ("cfg(unix", "`cfg(unix` as a cfg expression: invalid target specifier: unexpected `(` character"),
    ("cfg()", "expected start of a cfg expression, but cfg expression ended"),
    ('cfg(target_os = "linux)', "unterminated string in cfg"),
    ("cfg(1x)", "unexpected character `1` in cfg, expected parens, a comma, an identifier, or a string"),
    ("foo(bar)", "invalid target specifier: unexpected `(` character, cfg expressions must start with `cfg(`"),
    ("x86_64-unknown-linux-musl ", "invalid target specifier: unexpected character   in target name"),
    ("cfg(r#)", "expected identifier, but cfg expression ended"),
    ("cfg(r#1)", "unexpected character `1` in cfg"),
    ("cfg(all(,))", "expected identifier, found `,`"),
])
def test_invalid_cfg_messages_match_cargo(bad, message):
    with pytest.raises(TargetError, match="failed to parse `.*` as a cfg expression: ") as e:
        load_target("x86_64-unknown-linux-musl").matches(bad)
    assert message in str(e.value)


def test_tab_is_not_whitespace_in_cfg():
    with pytest.raises(TargetError, match="unexpected character `\t`"):
        load_target("x86_64-unknown-linux-musl").matches("cfg(\tunix)")


# -- rustflags -----------------------------------------------------------------------------------

MUSL, GNU = "x86_64-unknown-linux-musl", "x86_64-unknown-linux-gnu"
CRT = 'cfg(target_feature = "crt-static")'


@pytest.mark.parametrize("triple,flags,on", [
    (MUSL, (), False),
    (MUSL, ("-C", "target-feature=+crt-static"), True),
    (MUSL, ("-Ctarget-feature=+crt-static",), True),
    (MUSL, ("--codegen", "target-feature=+crt-static"), True),
    (MUSL, ("--codegen=target-feature=+crt-static",), True),
    (MUSL, ("-C", "target-feature=-crt-static"), False),
    (MUSL, ("-C", "target-feature=-crt-static,+crt-static"), True),     # rustc: any + wins
    (MUSL, ("-C", "target-feature=+crt-static", "-C", "target-feature=-crt-static"), True),
    (MUSL, ("-C", "target-feature=crt-static"), False),                  # no sign: ignored
    (GNU, ("-C", "target-feature=+crt-static"), True),
    ("x86_64-pc-windows-msvc", ("-C", "target-feature=+crt-static"), True),
    ("x86_64-apple-darwin", ("-C", "target-feature=+crt-static"), False),  # the target ignores it
    ("x86_64-pc-windows-gnu", ("-C", "target-feature=+crt-static"), False),
])
def test_crt_static(triple, flags, on):
    assert load_target(triple, flags).matches(CRT) is on


@pytest.mark.parametrize("flags,on", [
    ((), True),
    (("-O",), False),
    (("-C", "opt-level=3"), False),
    (("-Copt-level=z",), False),
    (("-C", "opt-level=0"), True),
    (("-C", "opt-level=3", "-C", "debug-assertions"), True),
    (("-O", "-C", "debug-assertions=yes"), True),
    (("-C", "debug-assertions=off"), False),
    (("-C", "debug_assertions=n"), False),
])
def test_debug_assertions(flags, on):
    assert load_target(MUSL, flags).matches("cfg(debug_assertions)") is on


def test_cfg_flags_and_features():
    t = load_target(MUSL, ("--cfg", "foo", "--cfg=bar", "--cfg", 'k="v"', "--cfg", 'sp = "a b"', "--cfg", "r#raw",
                           "-C", "target-feature=+aes,-sse2", "-C", "panic=abort"))
    for expr in ["cfg(foo)", "cfg(bar)", 'cfg(k = "v")', 'cfg(sp = "a b")', "cfg(raw)", 'cfg(target_feature = "aes")',
                 'cfg(panic = "abort")', 'cfg(target_feature = "sse")']:
        assert t.matches(expr), expr
    for expr in ['cfg(k = "w")', "cfg(k)", 'cfg(target_feature = "sse2")', 'cfg(panic = "unwind")']:
        assert not t.matches(expr), expr
    # other flags, and the values of flags that take one, change nothing
    assert load_target(MUSL, ("-L", "--cfg", "-A", "warnings")) .pairs == load_target(MUSL).pairs


@pytest.mark.parametrize("bad", ["foo bar", 'foo="bar', "1foo", 'foo=bar'])
def test_invalid_cfg_flag(bad):
    with pytest.raises(TargetError, match="invalid `--cfg` argument"):
        load_target(MUSL, ("--cfg", bad))


def test_rustflags_precedence():
    cfg = (("cfg(unix)", ("--cfg", "u")), ("cfg(windows)", "--cfg w"), ('cfg(target_env = "musl")', "--cfg m"))
    rf = RustFlags(triples=((MUSL, "--cfg t"),), cfgs=cfg, build=("--cfg", "b"))
    assert rf.for_target(MUSL, None) == ("--cfg", "t")                   # first probe: no cfg yet
    assert rf.for_target(MUSL, load_target(MUSL)) == ("--cfg", "t", "--cfg", "u", "--cfg", "m")
    assert rf.for_target(GNU, None) == ("--cfg", "b")
    assert rf.for_target(GNU, load_target(GNU)) == ("--cfg", "u")       # [target] found: [build] unused
    assert rf.for_target("x86_64-pc-windows-msvc", load_target("x86_64-pc-windows-msvc")) == ("--cfg", "w")
    assert RustFlags(env=(), triples=((MUSL, "--cfg t"),), build=("x",)).for_target(MUSL, None) == ()
    assert RustFlags(triples=((MUSL, ()),), build=("x",)).for_target(MUSL, None) == ("x",)
    assert RustFlags(cfgs=(("cfg(unix", "--cfg x"),)).for_target(MUSL, load_target(MUSL)) == ()   # unparsable: no match


def test_probe_target_runs_twice_like_cargo():
    crt = ("-C", "target-feature=+crt-static")
    # [target.<triple>] turns on a cfg that a [target.'cfg(..)'] table asks for
    t = probe_target(MUSL, RustFlags(triples=((MUSL, ("--cfg", "foo")),), cfgs=(("cfg(foo)", crt),)))
    assert t.matches("cfg(foo)") and t.matches(CRT)
    # [build] flags give the first probe's cfg; a matching cfg table then replaces them
    t = probe_target(MUSL, RustFlags(cfgs=(("cfg(unix)", ("--cfg", "foo")),), build=crt))
    assert t.matches("cfg(foo)") and not t.matches(CRT)
    assert t.rustflags == ("--cfg", "foo")


def _config(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_read_rustflags_environment(tmp_path):
    assert read_rustflags(tmp_path, {}) == RustFlags()
    # split on spaces only, each piece trimmed, as cargo does
    rf = read_rustflags(tmp_path, {"RUSTFLAGS": "  -C   target-feature=+crt-static \t x\ty "})
    assert rf.env == ("-C", "target-feature=+crt-static", "x\ty")
    assert read_rustflags(tmp_path, {"RUSTFLAGS": ""}).env == ()
    enc = {"CARGO_ENCODED_RUSTFLAGS": "--cfg\x1ffoo bar", "RUSTFLAGS": "-O"}
    assert read_rustflags(tmp_path, enc).env == ("--cfg", "foo bar")
    assert read_rustflags(tmp_path, {"CARGO_ENCODED_RUSTFLAGS": ""}).env == ()
    assert read_rustflags(tmp_path, {"CARGO_BUILD_RUSTFLAGS": "--cfg  a"}).build == ("--cfg", "a")
    rf = read_rustflags(tmp_path, {"CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS": "--cfg a"})
    assert rf.for_target(MUSL, None) == ("--cfg", "a") and rf.for_target(GNU, None) == ()


def test_read_rustflags_config_files(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CARGO_HOME", str(home))
    proj = tmp_path / "ws" / "proj"
    proj.mkdir(parents=True)
    _config(home / "config.toml", '[build]\nrustflags = ["--cfg", "home"]\n[target.\'cfg(unix)\']\nrustflags = "--cfg hu"\n')
    _config(tmp_path / "ws" / ".cargo" / "config.toml", '[build]\nrustflags = ["--cfg", "ws"]\n')
    _config(proj / ".cargo" / "config.toml",
            f'[build]\nrustflags = ["--cfg", "proj"]\n[target.{MUSL}]\nrustflags = "--cfg  t"\n'
            "[target.'cfg(unix)']\nrustflags = \"--cfg pu\"\n")
    rf = read_rustflags(proj, {})
    assert rf.build == ("--cfg", "home", "--cfg", "ws", "--cfg", "proj")     # arrays joined, nearest last
    assert rf.for_target(MUSL, load_target(MUSL)) == ("--cfg", "t", "--cfg", "pu")   # the nearer string wins
    assert read_rustflags(proj, {"CARGO_BUILD_RUSTFLAGS": "--cfg env"}).build[-2:] == ("--cfg", "env")
    env = {"CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS": "--cfg e"}
    assert read_rustflags(proj, env).for_target(MUSL, None) == ("--cfg", "e")      # replaces a string
    # the files are read again when they change
    _config(proj / ".cargo" / "config.toml", '[build]\nrustflags = ["--cfg", "changed", "--cfg", "x"]\n')
    assert read_rustflags(proj, {}).build[-4:] == ("--cfg", "changed", "--cfg", "x")


def test_read_rustflags_config_without_extension_wins(tmp_path):
    """cargo 1.95 warns when both exist and reads `.cargo/config`."""
    _config(tmp_path / ".cargo" / "config", '[build]\nrustflags = ["--cfg", "plain"]\n')
    _config(tmp_path / ".cargo" / "config.toml", '[build]\nrustflags = ["--cfg", "toml"]\n')
    assert read_rustflags(tmp_path, {}).build == ("--cfg", "plain")


@pytest.mark.parametrize("text,message", [
    ("[build]\nrustflags = 3\n", "must be a string or an array of strings"),
    ("[build]\nrustflags = [\"a\", 1]\n", "must be a string or an array of strings"),
    ("[build\n", "invalid cargo configuration"),
])
def test_read_rustflags_bad_config(tmp_path, text, message):
    _config(tmp_path / ".cargo" / "config.toml", text)
    with pytest.raises(TargetError, match=message):
        read_rustflags(tmp_path, {})


def test_read_rustflags_string_and_array_do_not_merge(tmp_path, monkeypatch):
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "home"))
    _config(tmp_path / "home" / "config.toml", '[build]\nrustflags = "--cfg a"\n')
    _config(tmp_path / "p" / ".cargo" / "config.toml", '[build]\nrustflags = ["--cfg", "b"]\n')
    with pytest.raises(TargetError, match="a string in one cargo config file and an array in another"):
        read_rustflags(tmp_path / "p", {})


# -- the host ------------------------------------------------------------------------------------


def _fake_rustc(path, host):
    path.write_text(f"#!/bin/sh\necho 'rustc 1.95.0 (fake)'\necho 'host: {host}'\necho 'release: 1.95.0'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for rustc")
def test_host_triple_asks_rustc(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTC", str(_fake_rustc(tmp_path / "rustc-arm", "aarch64-unknown-linux-gnu")))
    assert host_triple() == "aarch64-unknown-linux-gnu"
    monkeypatch.setenv("RUSTC", str(_fake_rustc(tmp_path / "rustc-new", "x86_64-unknown-linux-newlibc")))
    assert host_triple() == HOST_TARGET              # a triple we have no facts for
    monkeypatch.setenv("RUSTC", str(tmp_path / "missing-rustc"))
    assert host_triple() == HOST_TARGET
