"""Never "clean" unless proven: whether the blocker is built comes from the resolution's units, and
every direct dependency through which the build links it is named, even when the feature graph
cannot explain the chain. A contradiction is an internal error (exit 2), never a clean bill."""

from __future__ import annotations

import networkx as nx
import pytest

from codemod import analyze as analyze_mod
from codemod import cli
from codemod.analyze import AnalysisError
from codemod.registry import open_index
from codemod.run import Options, analyze_manifest
from conftest import ROOT, SNAPSHOT_REGISTRY
from fixture_registry import write_project

MUSL = "x86_64-unknown-linux-musl"
ARGS = ["examples/hello", "--index-url", str(SNAPSHOT_REGISTRY), "--target", MUSL]


def _seed():
    return analyze_manifest(ROOT / "examples/hello", Options(target=MUSL), open_index(str(SNAPSHOT_REGISTRY))).analysis


def test_blocked_comes_from_units_not_chains(monkeypatch):
    """With a feature graph that explains nothing, the build still links openssl-sys: blocked."""
    monkeypatch.setattr(analyze_mod, "build_graph", lambda res: nx.DiGraph())
    a = _seed()
    assert a.built and a.blocked and not a.vendored
    [c] = a.culprits
    assert (c.package, c.dependency, c.traced) == ("hello", "reqwest", False)
    assert c.chains[0][0] == "hello" and c.chains[0][-1] == "openssl-sys"
    assert c.as_json()["traced"] is False


def test_untraced_chain_is_said_and_check_fails(monkeypatch, capsys):
    monkeypatch.setattr(analyze_mod, "build_graph", lambda res: nx.DiGraph())
    monkeypatch.chdir(ROOT)
    code = cli.main(["--explain", *ARGS])
    out = capsys.readouterr().out
    assert "nothing links" not in out
    assert "could not be traced" in out
    assert code == 0           # --explain reports; it does not judge
    code = cli.main(["--check", *ARGS])
    assert code != 0


def test_no_chain_at_all_is_an_internal_error(monkeypatch, capsys):
    monkeypatch.setattr(analyze_mod, "build_graph", lambda res: nx.DiGraph())
    monkeypatch.setattr(analyze_mod, "_unit_chains", lambda res, blocker, side: {})
    with pytest.raises(AnalysisError, match=r"openssl-sys 0\.9\.91 is built for x86_64-unknown-linux-musl.*hello"):
        _seed()
    monkeypatch.chdir(ROOT)
    code = cli.main(["--check", *ARGS])
    err = capsys.readouterr().err
    assert code == 2
    assert "internal error" in err and "openssl-sys" in err and "hello" in err
    assert err.count("\n") == 1


def test_clean_only_when_nothing_is_built(universe, tmp_path):
    srv, _ = universe
    write_project(tmp_path, {"Cargo.toml": '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
                                           'reqwest = { version = "0.11", default-features = false, features = ["rustls-tls"] }\n'})
    a = analyze_manifest(tmp_path, Options(target=MUSL), open_index(srv.index_url)).analysis
    assert not a.built and not a.blocked and not a.culprits
