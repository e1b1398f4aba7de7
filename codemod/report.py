"""Output: the explain tree, the plan, unified diffs, and the JSON object."""

from __future__ import annotations

import difflib
from pathlib import Path

from .analyze import Culprit
from .run import Result, display_path, relative_message


def result_json(r: Result, status: str | None = None) -> dict:
    a = r.analysis
    doc = {
        "manifest": str(r.manifest),
        "target": a.target,
        "blocker": a.blocker,
        "vendored": a.vendored,
        "culprits": [c.as_json() for c in a.culprits],
        "host_only": [c.as_json() for c in a.host_only],
        "unanalysable": [u.as_json() for u in r.unanalysable],
    }
    if r.assumed_proc_macros:
        doc["assumed_proc_macros"] = [{"crate": c, "reason": why} for c, why in r.assumed_proc_macros]
    if r.analyses:
        doc["targets"] = [{"target": x.target, "vendored": x.vendored, "culprits": [c.as_json() for c in x.culprits],
                           "host_only": [c.as_json() for c in x.host_only]} for x in r.analyses]
    if r.plan is not None:
        doc["manifest_sha256"] = r.manifest_sha256
        if r.plan.edits:
            doc["files"] = edited_files(r)
        doc["status"] = status or plan_status(r, written=False)
        doc["plan"] = [rem.as_json() for rem in r.plan.remedies]
        if r.plan.reason:
            doc["reason"] = r.plan.reason
        if r.plan.unfixed:
            doc["unfixed"] = list(r.plan.unfixed)
        if r.plan.candidates:
            doc["candidates"] = [c.as_json() for c in r.plan.candidates]
        if r.plan.warnings:
            doc["warnings"] = list(r.plan.warnings)
    if getattr(r, "lock", None) is not None:
        doc["lock"] = r.lock.as_json()        # Cargo.lock, one more file of the fix
    if r.blockers:
        # the catalog's other libraries (--blocker all or a list); the fields above stay OpenSSL's
        doc["schema_version"] = SCHEMA_VERSION
        doc["blockers"] = [b.as_json() for b in r.blockers]
    return doc


def edited_files(r: Result) -> dict[str, str]:
    """The sha256 of every file the plan edits, as it was analysed: `--plan` applies the plan
    only to exactly these bytes."""
    from .edit import sha256

    analysed = {m.path: m.text for m in r.workspace.manifests.values()}
    analysed.setdefault(r.workspace.root.path, r.workspace.root.text)
    out = {}
    for e in r.plan.edits:
        if e.file not in out:
            text = analysed.get(Path(e.file).resolve())
            out[e.file] = sha256(text.encode("utf-8") if text is not None else Path(e.file).read_bytes())
    return out


SCHEMA_VERSION = 2     # 2: `blockers`, one entry per library of the catalog besides OpenSSL


def blocker_notes(r: Result) -> list[str]:
    """One line each for the other libraries linked from the system that no plan fixes (the
    fixable ones are in the diff); --explain has the full sections."""
    return [f"note: {r.manifest}: {b.crate} links {', '.join(b.status.libraries())} from the system for "
            f"{b.analysis.target}; cannot fix: {(b.unfixable or b.plan.reason).rstrip('.')}"
            for b in r.blockers if b.links_system and b.plan is not None and b.plan.status == "unfixable"]


def blocker_lines(r: Result) -> list[str]:
    """One section per library of the catalog that the build links from the system."""
    out: list[str] = []
    for b in r.blockers:
        if not b.links_system:
            continue
        versions = {pid.name: pid.version for pid, _side in b.analysis.resolution.units}
        libs = ", ".join(b.status.libraries())
        out.append("")
        out.append(f"{b.crate} {'/'.join(u.version for u in b.status.units)} links {libs} from the system "
                   f"(target {b.analysis.target}):")
        for why in dict.fromkeys(c.why for u in b.status.units for c in u.system if c.why):
            out.append(f"  {why}")
        for feature, chain in b.enabled_by:
            out.append(f"  `{feature}` is turned on by: {' → '.join(chain)}")
        out.append("")
        out.extend(_tree([c for cul in b.analysis.culprits for c in cul.chains], versions))
        out.append("")
        out.append("Pulled in by:")
        out.extend(_culprit_lines(b.analysis.culprits))
        if b.plan is not None:
            out.append("")
            if b.plan.status == "unfixable":
                out.append(f"Cannot fix {b.crate}: {(b.unfixable or b.plan.reason).rstrip('.')}.")
            elif b.plan.remedies:
                out.append(f"Plan for {b.crate}:")
                for rem in b.plan.remedies:
                    out.append(f"  [{rem.kind}, {rem.source}] {rem.reason}")
                    for note in rem.notes:
                        out.append(f"    note: {note}")
                if b.needs:
                    out.append(f"    note: the static build needs {', '.join(b.needs)}")
    return out


def plan_status(r: Result, written: bool) -> str:
    if r.plan.status == "clean":
        return "clean"
    if r.plan.status == "unfixable":
        return "unfixable"
    if r.plan.status == "partial":
        return "partially-fixed" if written else "would-partially-fix"
    return "fixed" if written else "would-fix"


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
        if "]" in step and " [" in step:        # `name [feature] (enabled by …)`
            name, rest = step.split(" [", 1)
            feat, note = rest.split("]", 1)
            return f'{name} feature "{feat}"{note}'
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
    if not a.built:
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
        out.append("Not analysed (their source could not be read; the answer above leaves them out):")
        out.extend(unanalysable_lines(r))
    notes = assumed_lines(r)
    if notes:
        out.append("")
        out.extend(notes)
    if r.plan is not None and r.plan.status != "clean":
        out.append("")
        out.extend(plan_lines(r))
    out.extend(blocker_lines(r))
    if r.plan is not None and r.plan.status == "fixable":
        out.append("")
        out.extend(next_steps(r, written=False))
    return "\n".join(out) + "\n"


VENDORED_NEEDS = "the vendored build needs perl, make and a C compiler for {target}: {cc}"
_CC = {"musl": "musl-gcc (Debian/Ubuntu: `apt install musl-tools`)", "gnu": "gcc"}


def next_steps(r: Result, written: bool) -> list[str]:
    """What the user does after the fix: the target, what a vendored build needs, the build."""
    p = r.plan
    targets = [r.analysis.target, *[a.target for a in r.analyses if a.target != r.analysis.target]]
    out = ["Next steps:" if written else "After the fix:"]
    if not written:
        out.append("  cargo static-fix" + (f" {display_path(r.manifest)}" if display_path(r.manifest) != "Cargo.toml" else "")
                   + "        # apply it")
    for t in targets:
        out.append(f"  rustup target add {t}")
    if any(rem.kind in ("vendored-feature", "openssl-dep") for rem in p.remedies):
        for t in targets:
            env = "musl" if t.endswith("-musl") else "gnu" if t.endswith("-gnu") else None
            out.append("  note: " + VENDORED_NEEDS.format(target=t, cc=_CC.get(env, "its C toolchain")))
    for t in targets:
        out.append(f"  cargo build --release --target {t}")
    lock = getattr(r, "lock", None)
    if not written:
        out.append("  note: applying the fix updates Cargo.lock too (`--no-update-lock` leaves that to cargo's next build)")
    elif lock is None or lock.new is None:
        out.append("  note: Cargo.lock gains the new packages on the first build (or run `cargo update -w` now)")
    return out


def unanalysable_lines(r: Result) -> list[str]:
    return [f"warning: {u.package} → {u.dependency}: {u.reason}" for u in r.unanalysable]


def assumed_lines(r: Result) -> list[str]:
    """The crates whose proc-macro status was guessed from their names, grouped by the reason."""
    by_reason: dict[str, list[str]] = {}
    for crate, why in r.assumed_proc_macros:
        by_reason.setdefault(why, []).append(crate)
    return [f"note: {r.manifest}: whether these are proc macros is guessed from their names, their Cargo.toml "
            f"could not be read ({why}): {', '.join(crates)}" for why, crates in by_reason.items()]


def plan_lines(r: Result) -> list[str]:
    p = r.plan
    out = [f"warning: {w}" for w in p.warnings]
    if p.status == "unfixable":
        out.append(f"Cannot fix: {p.reason}.")
    else:
        partial = " (partial: left as they are: " + ", ".join(p.unfixed) + ")" if p.status == "partial" else ""
        out.append(f"Plan{partial} ({p.evaluations} candidate set{'s' if p.evaluations != 1 else ''} checked by "
                   f"resolving every build again):")
        for rem in p.remedies:
            out.append(f"  [{rem.kind}, {rem.source}] {rem.reason}")
            for note in rem.notes:
                out.append(f"    note: {note}")
        if p.status == "partial":
            out.append(f"  not fixed: {p.reason}")
    return out + candidate_lines(p)


def candidate_lines(p) -> list[str]:
    """Every candidate the planner considered, with its cost and what became of it."""
    if not p.candidates:
        return []
    out = ["Candidates considered (cost: 1 vendored feature, 2 rustls switch, 3 new dependency):"]
    for c in p.candidates:
        why = f": {c.why}" if c.why else ""
        if c.source == "-":
            out.append(f"  {c.culprit}: no candidate — {c.why}")
        else:
            out.append(f"  {c.culprit}: [{c.remedy}, {c.source}, cost {c.cost}] {c.description} — {c.status}{why}")
    return out


def _culprit_lines(culprits: tuple[Culprit, ...]) -> list[str]:
    out = []
    for c in culprits:
        renamed = f" (crate {c.crate})" if c.crate != c.dependency else ""
        kind = "" if c.kind == "normal" else f" [{c.kind}-dependency]"
        out.append(f"  {c.package} → {c.dependency}{renamed}{kind}:")
        # the shortest chain says it; the others are variations of it
        out.append(f"    {' → '.join(c.chains[0])}" + (f"  (+{len(c.chains) - 1} more)" if len(c.chains) > 1 else ""))
        if not c.traced:
            out.append("    note: the build links it along this chain; the features that open it could not be traced")
    return out


def diff_name(path: Path) -> str:
    """The name a diff header gives a file: relative to the top of its git work tree, as `git diff`
    writes it (so `git apply` takes it from the repository root), else to the working directory."""
    real = Path(path).resolve()
    for parent in real.parents:
        if (parent / ".git").exists():
            return real.relative_to(parent).as_posix()
    return display_path(path)


def unified_diff(path: Path, old: str, new: str, color: bool) -> str:
    name = diff_name(path)
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        if color:
            if line.startswith(("+++", "---")):
                line = f"\x1b[1m{line.rstrip(chr(10))}\x1b[0m\n"
            elif line.startswith("+"):
                line = f"\x1b[32m{line.rstrip(chr(10))}\x1b[0m\n"
            elif line.startswith("-"):
                line = f"\x1b[31m{line.rstrip(chr(10))}\x1b[0m\n"
            elif line.startswith("@@"):
                line = f"\x1b[36m{line.rstrip(chr(10))}\x1b[0m\n"
        out.append(line)
    return "".join(out)


# -- many manifests ---------------------------------------------------------------------------------

def batch_entries(job, r: Result, written: bool) -> list[dict]:
    """One JSON entry per manifest the job reports on (call before writing: hashes are of the
    files as they were)."""
    from .edit import sha256

    doc = result_json(r, plan_status(r, written))
    if not job.batch:
        return [doc]
    by_dir = {Path(d).resolve(): p.name for d, p in r.workspace.packages.items()}
    edited = {Path(e.file).resolve() for e in r.plan.edits}
    members = {Path(d).resolve() for d in r.workspace.members}
    culprits_of: dict[str, list] = {}
    host_of: dict[str, list] = {}
    for c in doc["culprits"]:
        culprits_of.setdefault(c["package"], []).append(c)
    for c in doc["host_only"]:
        host_of.setdefault(c["package"], []).append(c)
    # each entry lists the remedies that edit it or a local package on its culprits' chains (the
    # root's shared ones included), so a workspace of n members does not print its plan n times;
    # a remedy that edits none of the reported manifests stays with every entry that has culprits
    manifest_of = {p.name: Path(d).resolve() / "Cargo.toml" for d, p in r.workspace.packages.items()}
    root_manifest = r.workspace.root.path.resolve()
    reported = {Path(m).resolve() for m in job.manifests}
    remedy_files = [{Path(e.file).resolve() for e in rem.edits} for rem in r.plan.remedies]
    candidates_of: dict[str | None, list[int]] = {}          # culprit package (None: every member) -> indices
    for i, c in enumerate(doc.get("candidates", ())):
        owner, arrow, _ = c["culprit"].partition(" → ")
        candidates_of.setdefault(owner if arrow else None, []).append(i)
    out = []
    for m in job.manifests:
        m = Path(m).resolve()
        name = by_dir.get(m.parent) if m.parent in members else None
        culprits = culprits_of.get(name, [])
        host = host_of.get(name, [])
        touched = m in edited
        unfixed = {u.split(" → ")[0] for u in r.plan.unfixed}
        if r.plan.status == "unfixable" and culprits or r.plan.status == "partial" and name in unfixed:
            status = "unfixable"
        elif touched or (culprits and r.plan.status in ("fixable", "partial")):
            status = "fixed" if written else "would-fix"
        else:
            status = "clean"
        mine = {m}
        if culprits:
            mine |= {root_manifest} | {manifest_of[step] for c in culprits for chain in c["chains"] for step in chain
                                       if step in manifest_of}
        plan = [rem for rem, files in zip(doc["plan"], remedy_files) if files & mine or (culprits and not files & reported)]
        entry = dict(doc, manifest=display_path(m), culprits=culprits, host_only=host, status=status,
                     manifest_sha256=sha256(m.read_bytes()), plan=plan)
        if plan and "files" in doc:
            edited_here = {e["file"] for rem in plan for e in rem["edits"]}
            entry["files"] = {f: digest for f, digest in doc["files"].items() if f in edited_here}
        if "candidates" in doc:
            # this manifest's own culprits' candidates, and the workspace-wide ones where it has
            # culprits (and in the root's entry): a workspace of n members does not print its
            # whole candidate list n times
            shared = candidates_of.get(None, []) if culprits or m == root_manifest else []
            own = [doc["candidates"][i] for i in sorted(shared + (candidates_of.get(name, []) if name else []))]
            if own:
                entry["candidates"] = own
            else:
                del entry["candidates"]
        if r.plan.reason and status != "unfixable":
            entry.pop("reason", None)
        if not entry["plan"]:
            entry.pop("files", None)
        out.append(entry)
    return out


def failure_entries(failure) -> list[dict]:
    return [{"manifest": display_path(m), "status": "error", "error": relative_message(failure.error)} for m in failure.manifests]


def summary_line(entries: list[dict]) -> str:
    """black's closing line: `3 manifests fixed, 1 unfixable, 40 clean, 1 error`."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    words = {"fixed": "fixed", "would-fix": "would be fixed", "partially-fixed": "partially fixed",
             "would-partially-fix": "would be partially fixed", "unfixable": "unfixable", "clean": "clean"}
    parts = []
    first = True
    for status in ("fixed", "would-fix", "partially-fixed", "would-partially-fix", "unfixable", "clean"):
        n = counts.get(status, 0)
        if n:
            noun = f" manifest{'s' if n != 1 else ''}" if first else ""
            parts.append(f"{n}{noun} {words[status]}")
            first = False
    n = counts.get("error", 0)
    if n:
        parts.append(f"{n} error{'s' if n != 1 else ''}")
    return ", ".join(parts) + "."


# -- pictures ------------------------------------------------------------------------------------

def graph_text(results: list[Result], fmt: str) -> str:
    """The culprit subgraph of each result (direct dependency → feature → … → blocker), the
    dependencies a plan edits drawn highlighted, as Graphviz DOT or Mermaid."""
    nodes: dict[str, tuple[str, bool]] = {}
    edges: set[tuple[str, str]] = set()
    notes: list[tuple[str, str]] = []             # (edit label, the node it changes)
    for r in results:
        edited = {(e.dependency) for e in (r.plan.edits if r.plan else [])}
        first_step: dict[str, str] = {}
        for c in r.analysis.culprits:
            for chain in c.chains:
                ids = []
                for i, step in enumerate(chain):
                    nid = f"{Path(r.manifest).parent.name}:{step}" if i == 0 else step
                    hl = i == 1 and (c.dependency in edited or step.split(" [")[0] == c.crate and c.dependency in edited)
                    label, old = nodes.get(nid, (step, False))
                    nodes[nid] = (label, old or hl)
                    ids.append(nid)
                edges.update(zip(ids, ids[1:]))
                if len(ids) > 1:
                    first_step.setdefault(c.dependency, ids[1])
        for e in (r.plan.edits if r.plan else []):
            if e.add is not None:
                label = f"add {e.dependency} {e.add.get('version', '')} +{', +'.join(e.add.get('features', []))}"
                target = next(iter(first_step.values()), None)
            else:
                parts = [f"+{f}" for f in e.add_features] + [f"-{f}" for f in e.remove_features]
                if e.default_features is False:
                    parts.append("default-features = false")
                label = f"{e.dependency}: {' '.join(parts)}"
                target = first_step.get(e.dependency)
            if target is not None:
                notes.append((label, target))
    key = {nid: f"n{i}" for i, nid in enumerate(sorted(nodes))}
    if fmt == "dot":
        out = ["digraph culprits {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
        for nid in sorted(nodes):
            label, hl = nodes[nid]
            style = ', style=filled, fillcolor="#ffe08a", penwidth=2' if hl else ""
            if label.endswith("openssl-sys"):
                style += ', color="#c0392b"'
            out.append(f'  {key[nid]} [label="{label}"{style}];')
        out += [f"  {key[a]} -> {key[b]};" for a, b in sorted(edges)]
        for i, (label, target) in enumerate(notes):
            out.append(f'  e{i} [label="{label}", shape=note, style=filled, fillcolor="#d5f5e3"];')
            out.append(f"  e{i} -> {key[target]} [style=dashed];")
        out.append("}")
    else:
        out = ["flowchart LR"]
        for nid in sorted(nodes):
            label, _ = nodes[nid]
            out.append(f'  {key[nid]}["{label}"]')
        out += [f"  {key[a]} --> {key[b]}" for a, b in sorted(edges)]
        for i, (label, target) in enumerate(notes):
            out.append(f'  e{i}[/"{label}"/] -.-> {key[target]}')
        for nid in sorted(nodes):
            if nodes[nid][1]:
                out.append(f"  style {key[nid]} fill:#ffe08a,stroke:#333,stroke-width:2px")
    return "\n".join(out) + "\n"
