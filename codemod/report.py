"""Output: the explain tree (text) and the JSON object."""

from __future__ import annotations

from .analyze import Analysis, Culprit
from .run import Result


def result_json(r: Result) -> dict:
    a = r.analysis
    return {
        "manifest": str(r.manifest),
        "target": a.target,
        "blocker": a.blocker,
        "vendored": a.vendored,
        "culprits": [c.as_json() for c in a.culprits],
        "host_only": [c.as_json() for c in a.host_only],
        "unanalysable": [u.as_json() for u in r.unanalysable],
    }


def _tree(chains: list[tuple[str, ...]], versions: dict[str, str]) -> list[str]:
    """An inverted tree, blocker at the top, drawn like `cargo tree -i -e features`: each step's
    dependents below it, a step already expanded once marked `(*)`."""
    below: dict[str, set[str]] = {}
    for chain in chains:
        for dependent, step in zip(chain, chain[1:]):
            below.setdefault(step, set()).add(dependent)
    lines: list[str] = []
    shown: set[str] = set()

    def label(step: str) -> str:
        if step.endswith("]") and " [" in step:
            name, feat = step[:-1].split(" [", 1)
            return f'{name} feature "{feat}"'
        v = versions.get(step)
        return f"{step} v{v}" if v else step

    def walk(step: str, prefix: str, branch: str) -> None:
        kids = sorted(below.get(step, ()))
        repeat = step in shown and kids
        lines.append(f"{branch}{label(step)}{' (*)' if repeat else ''}")
        if repeat:
            return
        shown.add(step)
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, prefix + ("    " if last else "│   "), prefix + ("└── " if last else "├── "))

    for root in sorted({c[-1] for c in chains}):
        walk(root, "", "")
    return lines


def explain_text(r: Result) -> str:
    a = r.analysis
    out: list[str] = []
    versions = {pid.name: pid.version for pid, _side in a.resolution.units}
    where = f"{r.manifest} (target {a.target})"
    if not a.culprits:
        out.append(f"{where}: nothing links {a.blocker}.")
    else:
        state = "vendored (built from source, links statically)" if a.vendored else "NOT vendored: the build needs the system OpenSSL"
        feats = ", ".join(a.blocker_features) or "none"
        out.append(f"{where}: {a.blocker} {'/'.join(a.blocker_versions)} is built, {state}; features: {feats}.")
        out.append("")
        out.extend(_tree([c for cul in a.culprits for c in cul.chains], versions))
        out.append("")
        out.append("Pulled in by:")
        out.extend(_culprit_lines(a.culprits))
    if a.host_only:
        out.append("")
        out.append(f"Only on the build host (build scripts, proc macros; does not block a static {a.target} binary):")
        out.extend(_culprit_lines(a.host_only))
    if r.unanalysable:
        out.append("")
        out.append("Not analysed (cannot be looked up in an index):")
        out.extend(f"  {u.package} → {u.dependency}: {u.reason}" for u in r.unanalysable)
    return "\n".join(out) + "\n"


def _culprit_lines(culprits: tuple[Culprit, ...]) -> list[str]:
    out = []
    for c in culprits:
        renamed = f" (crate {c.crate})" if c.crate != c.dependency else ""
        kind = "" if c.kind == "normal" else f" [{c.kind}-dependency]"
        out.append(f"  {c.package} → {c.dependency}{renamed}{kind}:")
        out.extend(f"    {' → '.join(chain)}" for chain in c.chains)
    return out
