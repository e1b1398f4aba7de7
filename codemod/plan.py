"""The planner: candidate remedies from rules/ and from the graph, each checked by resolving the
edited manifests again; a set of edits that leaves no unvendored blocker in any build wins.

Cost (DESIGN §3): a feature on an existing dependency (vendored) < a rustls switch < a new
`openssl`/`openssl-sys` dependency with `vendored`. Ties go to fewer edits, then to rules over
discoveries.

A plan is checked against every build cargo would make: the selected members together
(`--workspace`, features unified) and each member on its own (`-p member`), for every target. A
build passes when every target unit of the blocker has `vendored` (or there is none), and when a
member that linked a TLS crate before still links one.

The search is linear in the number of edit points: every point starts at its cheapest candidate
and all are checked together; a failing build names the points still on its path, and only those
move on to their next candidate. A point whose candidates are all rejected is stuck: the global
remedy (a vendored `openssl` dependency) is tried, and without one the project is unfixable (or,
with `partial`, fixed for the other culprits). Finally edits another edit makes redundant are
dropped, the most expensive first, one check each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

from .analyze import Analysis, analyze
from .edit import Edit, apply_edits, table_name
from .model import Dep, Package, PkgId, rustls_features
from .resolve import TARGET_SIDE, Resolution
from .rules import Rule, rules_for
from .semver import SemverError, parse_req, parse_version

COST = {"vendored-feature": 1, "rustls": 2, "openssl-dep": 3,
        "static-feature": 1, "static-dep": 3}     # the same for the other libraries (static_plan.py)
STRATEGIES = {"auto": None, "vendored": "vendored-feature", "rustls": "rustls", "openssl-dep": "openssl-dep"}
VENDORED_NOTE = "vendored OpenSSL is compiled from source: the build needs perl, make and a C compiler for the target"
TLS_CRATES = frozenset({"native-tls", "rustls", "openssl", "openssl-sys"})


@dataclass(frozen=True)
class Remedy:
    """A candidate fix: a kind, the edits that make it, and why it applies."""

    kind: str                      # vendored-feature | rustls | openssl-dep
    source: str                    # rule | discovered
    reason: str
    edits: tuple[Edit, ...]
    notes: tuple[str, ...] = ()
    misfit: int = 0                # 1 when a rule's switch does not name a feature the entry has

    def as_json(self) -> dict:
        return {"remedy": self.kind, "source": self.source, "reason": self.reason,
                "edits": [e.as_json() for e in self.edits], "notes": list(self.notes)}

    @property
    def cost(self) -> tuple[int, int, int, int]:
        return (COST[self.kind], len(self.edits), self.misfit, self.source != "rule")


@dataclass(frozen=True)
class Considered:
    """One candidate the planner looked at, and what became of it."""

    culprit: str                   # `member → dependency (crate version)`, or "every culprit member"
    remedy: str                    # kind
    source: str                    # rule | discovered
    description: str
    cost: int                      # COST of the kind; `edits` breaks ties
    edits: int
    status: str                    # chosen | rejected | unavailable | not-needed | not-tried | works
    why: str = ""

    def as_json(self) -> dict:
        return {"culprit": self.culprit, "remedy": self.remedy, "source": self.source,
                "description": self.description, "cost": self.cost, "edits": self.edits,
                "status": self.status, "why": self.why}


@dataclass
class Plan:
    """The planner's answer: a status, the remedies chosen and the new text of each changed file."""

    status: str                                    # clean | fixable | partial | unfixable
    remedies: tuple[Remedy, ...] = ()
    texts: dict[Path, str] = field(default_factory=dict)     # new contents of each changed file
    reason: str = ""                               # why unfixable (for partial: what is left)
    warnings: tuple[str, ...] = ()
    evaluations: int = 0                           # candidate sets checked (each: every build resolved again)
    candidates: tuple[Considered, ...] = ()
    unfixed: tuple[str, ...] = ()                  # culprits left as they are (`member → dependency`)

    @property
    def edits(self) -> list[Edit]:
        return [e for r in self.remedies for e in r.edits]


@dataclass(frozen=True)
class _Point:
    """Where a path can be cut: a local package's dependency entry on a registry crate."""

    local: PkgId
    dep: Dep
    crate: PkgId
    opening: frozenset[str]        # features of the crate that open the path

    @property
    def label(self) -> str:
        return f"{self.local.name} → {self.dep.name} ({self.crate.name} {self.crate.version})"


@dataclass(frozen=True)
class Build:
    """One build cargo would make: `label` says how to ask for it (`-p b`, `--workspace`)."""

    label: str
    resolution: Resolution
    member: PkgId | None = None    # the member built on its own; None for several together

    @cached_property
    def manifests(self) -> frozenset[Path]:
        """The Cargo.toml of every local package this build compiles: an edit elsewhere cannot change it
        (except through the workspace root)."""
        return frozenset((Path(pid.path) / "Cargo.toml").resolve() for pid, _side in self.resolution.units if pid.path)

    @cached_property
    def inherits(self) -> frozenset[str]:
        """The dependencies its local packages take from `[workspace.dependencies]`."""
        res = self.resolution
        return frozenset(d.name for pid, _side in res.units if pid.path for d in res.packages[pid].deps if d.inherited)


@dataclass
class Verdict:
    """A check of candidate edits: the texts checked and the builds that still fail."""

    texts: dict[Path, str]
    failures: list[tuple[Build, str]]
    builds: list[Build] = field(default_factory=list, repr=False)
    complete: bool = True          # False: members built on their own only (a pruning trial, never a proof)

    @property
    def ok(self) -> bool:
        return not self.failures


def blocker_fixed(res: Resolution, blocker: str) -> bool:
    """No target unit of the blocker without `vendored` (none at all counts as fixed)."""
    units = [pid for pid, side in res.units if pid.name == blocker and side == TARGET_SIDE]
    return all("vendored" in res.unit_features(pid, TARGET_SIDE) for pid in units)


def tls_crates(res: Resolution, blocker: str) -> set[str]:
    return {pid.name for pid, side in res.units if side == TARGET_SIDE and (pid.name in TLS_CRATES or pid.name == blocker)}


class Checker:
    """Applies edits in memory and resolves every build again: is the blocker vendored or gone
    everywhere, and does every member that had TLS still have it?

    `reload(texts, near)` returns the builds (see `Build`) for the manifests with `texts`
    overriding their contents; `near`, when given, is (texts, builds) of a set checked before, so
    builds the difference cannot reach need not be resolved again. Errors (a registry that cannot
    be reached, a manifest cargo would reject) propagate: only a resolution that succeeds counts
    against a candidate."""

    def __init__(self, originals: dict[Path, str], reload: Callable[[dict[Path, str]], list[Build]], blocker: str,
                 fixed: Callable[[Resolution, str], bool] | None = None, root: Path | None = None):
        self.originals = originals
        self.root = root                           # the workspace root's Cargo.toml (resolved): every build reads it
        self.reload = reload
        self.blocker = blocker
        self.fixed = fixed or blocker_fixed        # the catalog's predicate for other libraries
        self.evaluations = 0
        self._baseline: list[Build] | None = None
        self._base_failures: list[tuple[Build, str]] | None = None
        self._seen: dict[tuple, Verdict] = {}
        self._texts: dict[tuple, str] = {}
        self._real: dict[str, Path] = {}
        self._failing_with: dict[PkgId, list[Build]] | None = None

    def real(self, file: str) -> Path:
        """An edit's file, resolved (once per checker: the same few files come back in every check)."""
        path = self._real.get(file)
        if path is None:
            path = self._real[file] = Path(file).resolve()
        return path

    def texts_for(self, edits: list[Edit]) -> dict[Path, str]:
        by_file: dict[Path, list[Edit]] = {}
        for e in edits:
            by_file.setdefault(self.real(e.file), []).append(e)
        out = {}
        for path, es in by_file.items():
            key = (path, tuple((e, repr(e.add)) for e in es))
            if key not in self._texts:
                original = self.originals.get(path)
                if original is None:
                    original = path.read_bytes().decode("utf-8")       # no newline translation: CRLF stays
                    self.originals[path] = original
                self._texts[key] = apply_edits(original, es, str(path))
            out[path] = self._texts[key]
        return out

    def seed(self, builds: list[Build]) -> None:
        """The builds as the manifests stand, when the caller has resolved them already."""
        self._baseline = builds

    def base_failures(self) -> list[tuple[Build, str]]:
        if self._base_failures is None:
            self._base_failures = self.failing(self.baseline())
        return self._base_failures

    def base_failing_with(self, local: PkgId) -> list[Build]:
        """The members built on their own that failed as the manifests stand and build `local`."""
        if self._failing_with is None:
            self._failing_with = {}
            for b, _ in self.base_failures():
                if b.member is not None:
                    for pid, side in b.resolution.units:
                        if pid.path and side == TARGET_SIDE:
                            self._failing_with.setdefault(pid, []).append(b)
        return self._failing_with.get(local, [])

    def baseline(self) -> list[Build]:
        """The builds as the manifests stand (resolved once; not a candidate check)."""
        if self._baseline is None:
            self._baseline = self.reload({})
        return self._baseline

    def failing(self, builds: list[Build]) -> list[tuple[Build, str]]:
        out = []
        had = None
        for b in builds:
            if not self.fixed(b.resolution, self.blocker):
                how = "without `vendored`" if self.fixed is blocker_fixed else "linking the system library"
                out.append((b, f"`cargo build {b.label}` still builds {self.blocker} {how}"))
                continue
            if self.fixed is not blocker_fixed or tls_crates(b.resolution, self.blocker):
                continue            # (the TLS backend is OpenSSL's question only)
            if had is None:
                had = {x.label: tls_crates(x.resolution, self.blocker) for x in self.baseline()}
            if had.get(b.label):
                out.append((b, f"`cargo build {b.label}` has no TLS crate left (it had {', '.join(sorted(had[b.label]))})"))
        return out

    def check(self, edits: list[Edit], near: Verdict | None = None, members_only: bool = False) -> Verdict:
        """Resolve every build with `edits` applied. `members_only`: only the members built on their
        own (`-p m`), not together: a pruning trial, whose answer a complete check must confirm."""
        key = tuple((e, repr(e.add)) for e in edits)
        if key in self._seen:
            return self._seen[key]
        if members_only and (key, True) in self._seen:
            return self._seen[(key, True)]
        texts = self.texts_for(edits)
        self.evaluations += 1
        ref = (near.texts, near.builds) if near is not None else None
        builds = self.reload(texts, ref, members_only=True) if members_only else (
            self.reload(texts, ref) if ref is not None else self.reload(texts))
        verdict = Verdict(texts, self.failing(builds), builds, complete=not members_only)
        self._seen[(key, True) if members_only else key] = verdict
        return verdict

    def fixes(self, edits: list[Edit]) -> dict[Path, str] | None:
        v = self.check(edits)
        return v.texts if v.ok else None


def make_plan(analysis: Analysis, ws, rules: list[Rule], checker: Checker, strategy: str = "auto",
              display: Callable[[Path], str] = str, scope: str | None = None, partial: bool = False,
              versions: Callable[[str, str | None], list[Package] | None] | None = None) -> Plan:
    """`scope` (a cfg expression) puts the edits under `[target.'<scope>'.dependencies]` instead,
    so builds for other targets keep what they had; only additive remedies can be scoped.
    `partial`: when some culprit has no remedy, still fix the others (status "partial").
    `versions(crate, registry)`: the index's versions of a crate, to say what would fix a culprit
    that has no remedy."""
    res = analysis.resolution
    base_failures = checker.base_failures()
    if not base_failures:
        return Plan("clean")
    points = _edit_points(analysis)
    warnings = tuple(w for p in points for w in _mistakes(p, res, rules))
    want = STRATEGIES[strategy]
    per_point: list[list[Remedy]] = []
    considered: list[Considered] = []
    for p in points:
        cands, unavailable = _vendored_candidates(p, res, ws, rules, display, analysis.blocker)
        if scope is None:
            rcands, runavailable = _rustls_candidates(p, res, ws, rules, display)
            cands += rcands
            unavailable += runavailable
        else:
            cands = [_scoped(c, p, scope, display) for c in cands]
        per_point.append(sorted((c for c in cands if want in (None, c.kind)), key=lambda r: r.cost))
        considered += [Considered(p.label, kind, "rule", desc, COST[kind], 0, "unavailable", why)
                       for kind, desc, why in unavailable if want in (None, kind)]
    need = {b.member.name for b, _ in base_failures if b.member is not None}
    globals_ = [g for g in _openssl_dep_candidates(analysis, ws, display, scope, need) if want in (None, g.kind)]

    advice = tuple(dict.fromkeys(
        rule.notes for p in points for rule in rules_for(rules, p.crate.name, p.crate.version)
        if not rule.remedies and rule.notes))
    outcome = _search(points, per_point, globals_, checker, analysis.blocker)
    for i, p in enumerate(points):
        for j, rem in enumerate(per_point[i]):
            status, why = outcome.status.get((i, j), ("not-tried", "a cheaper candidate works"))
            considered.append(Considered(p.label, rem.kind, rem.source, rem.reason, COST[rem.kind], len(rem.edits), status, why))
        if not per_point[i] and want != "openssl-dep":
            considered.append(Considered(p.label, want or "any", "-", "no candidate", 0, 0, "unavailable",
                                         _no_remedy(p, res, strategy, rules, scope)))
    for j, g in enumerate(globals_):
        status, why = outcome.status.get((None, j), ("not-tried", "a cheaper candidate works"))
        considered.append(Considered("every member that builds " + analysis.blocker, g.kind, g.source, g.reason,
                                     COST[g.kind], len(g.edits), status, why))
    considered = sorted(considered, key=lambda c: (c.remedy == "openssl-dep", c.culprit, c.cost, c.edits))

    def finish(combo) -> tuple[Remedy, ...]:
        return tuple(replace(r, notes=tuple(dict.fromkeys(r.notes + advice))) for r in combo)

    common = dict(warnings=warnings, evaluations=checker.evaluations, candidates=tuple(considered))
    if outcome.texts is not None:
        return Plan("fixable", finish(outcome.combo), outcome.texts, **common)
    stuck = [points[i] for i in sorted(outcome.stuck)]
    reason = _why_unfixable(points, per_point, globals_, strategy, res)
    details = [f"{p.label}: {_no_remedy(p, res, strategy, rules, scope) if not per_point[i] else 'every candidate was rejected'}; "
               f"{_what_would_fix(p, res, rules, versions)}"
               for i, p in zip(sorted(outcome.stuck), stuck)] if want != "openssl-dep" else []
    if details:
        reason += " (" + "; ".join(details) + ")"
    if scope is not None and want in (None, "rustls"):
        reason += "; under --scope only additive remedies apply (a rustls switch turns default features off for every target)"
    reason = " ".join((reason, *advice))
    unfixed = tuple(f"{p.local.name} → {p.dep.name}" for p in stuck)
    if partial and outcome.partial_combo:
        considered = [replace(c, status="chosen", why="--partial: applied; another culprit has no remedy")
                      if c.status == "works" else c for c in considered]
        common["candidates"] = tuple(considered)
        return Plan("partial", finish(outcome.partial_combo), outcome.partial_texts, reason=reason,
                    unfixed=unfixed, **common)
    return Plan("unfixable", reason=reason, unfixed=unfixed, **common)


@dataclass
class _Outcome:
    """What the search found: the chosen combination and each candidate's status."""

    combo: tuple[Remedy, ...] = ()
    texts: dict[Path, str] | None = None
    status: dict = field(default_factory=dict)           # (point index | None, candidate index) -> (status, why)
    stuck: set[int] = field(default_factory=set)
    partial_combo: tuple[Remedy, ...] = ()
    partial_texts: dict[Path, str] = field(default_factory=dict)


def _search(points: list[_Point], per_point: list[list[Remedy]], globals_: list[Remedy], checker: Checker,
            blocker: str) -> _Outcome:
    out = _Outcome()
    choice = {i: 0 for i, c in enumerate(per_point) if c}
    stuck = {i for i, c in enumerate(per_point) if not c}
    glob = -1

    def combo_of() -> list[tuple]:
        items = [((i, choice[i]), per_point[i][choice[i]]) for i in sorted(choice) if i not in stuck]
        if glob >= 0:
            items.append(((None, glob), globals_[glob]))
        return items

    def edits_of(items) -> list[Edit]:
        return list(dict.fromkeys(e for _, r in items for e in r.edits))

    verdict = None
    while True:
        items = combo_of()
        if not items:
            if glob + 1 < len(globals_):
                glob += 1
                continue
            break
        verdict = checker.check(edits_of(items), verdict)
        if verdict.ok:
            out.combo, out.texts = _prune(items, verdict, checker, edits_of, out.status, points)
            out.stuck = set()
            return out
        in_combo = {key[0] for key, _ in items if key[0] is not None}
        blamed: dict[int, list[str]] = {}
        for build, why in verdict.failures:
            for i in _blame(build, why, points, blocker) & in_combo:
                blamed.setdefault(i, []).append(why)
        moved = False
        for i, whys in sorted(blamed.items()):
            out.status[(i, choice[i])] = ("rejected", "; ".join(dict.fromkeys(whys)))
            if choice[i] + 1 < len(per_point[i]):
                choice[i] += 1
                moved = True
            else:
                stuck.add(i)
        if glob >= 0:
            out.status[(None, glob)] = ("rejected", "; ".join(dict.fromkeys(w for _, w in verdict.failures)))
        if moved:
            continue
        # every point still on a failing path is out of candidates: the global remedy, if any
        if glob + 1 < len(globals_):
            glob += 1
            continue
        break
    # the culprits to name: the stuck points the failing builds still go through
    on_paths = {i for build, why in (verdict.failures if items else ()) for i in _blame(build, why, points, blocker)}
    out.stuck = (stuck & on_paths) or stuck
    left = [((i, choice[i]), per_point[i][choice[i]]) for i in sorted(choice) if i not in stuck]
    if left:
        # a partial plan: the other culprits' edits, as long as every build that still fails
        # fails only on the stuck culprits' paths
        verdict = checker.check(edits_of(left), verdict)
        if all(not (_blame(b, why, points, blocker) - stuck) for b, why in verdict.failures):
            out.partial_combo = tuple(r for _, r in left)
            out.partial_texts = verdict.texts
            for key, _ in left:
                out.status[key] = ("works", "fixes its own culprit; another culprit has no remedy")
    return out


def _blame(build: Build, why: str, points: list[_Point], blocker: str) -> set[int]:
    """The edit points a failing build still goes through: those on its remaining paths to the
    blocker, else (a lost TLS crate, a path we cannot attribute) those inside the build."""
    res = build.resolution
    if not blocker_fixed(res, blocker):
        on_path = {(p.local, p.dep.name) for p in _edit_points(analyze(res, blocker))}
        hit = {i for i, p in enumerate(points) if (p.local, p.dep.name) in on_path}
        if hit:
            return hit
    return {i for i, p in enumerate(points) if (p.local, TARGET_SIDE) in res.units}


def _prune(items, verdict: Verdict, checker: Checker, edits_of, status: dict, points: list[_Point]):
    """Drop edits the others make unnecessary, the most expensive first. An edit on the path of a
    member whose own build failed before, when no other edit touches a manifest of that build, is
    needed without a check: removing it gives that build back as it was.

    The answer is the one-at-a-time greedy pass (`_prune_each`), reached in fewer resolutions:
    edits whose removal can change no build in common (no member build reads a manifest of both)
    are tried together, each trial resolves the members built on their own only, and the result
    is then checked completely, the workspace build included. Should that check fail (features
    that unify only when everything is built together), the greedy pass runs with complete checks."""
    order = sorted(items, key=lambda kv: kv[1].cost, reverse=True)
    found = _prune_together(items, order, verdict, checker, edits_of, points)
    if found is not None:
        kept, trial = found
        final = checker.check(edits_of(kept), trial) if len(kept) < len(items) else verdict
        if final.ok:
            return _pruned(items, kept, final.texts, status)
    return _prune_each(order, items, verdict, checker, edits_of, status, points)


def _pruned(items, kept, texts, status: dict):
    for item in items:
        status[item[0]] = ("chosen", "") if any(x is item for x in kept) else (
            "not-needed", "the other edits fix its culprit too")
    return tuple(r for _, r in kept), texts


def _prune_each(order, items, verdict: Verdict, checker: Checker, edits_of, status: dict, points: list[_Point]):
    kept = list(items)
    texts = verdict.texts
    for item in order:
        trial = [x for x in kept if x is not item]
        if not trial or _needed(item, _Edited(trial, checker), checker, points):
            continue
        v = checker.check(edits_of(trial), verdict)
        if v.ok:
            kept, texts, verdict = trial, v.texts, v
    return _pruned(items, kept, texts, status)


def _prune_together(items, order, verdict: Verdict, checker: Checker, edits_of, points: list[_Point]):
    """(kept items, their members-only verdict), or None when a trial's failure cannot be put
    down to one removal."""
    member_builds = [b for b in verdict.builds if b.member is not None]
    if not member_builds:
        return None
    everything = frozenset(b.label for b in member_builds)

    def reach(item) -> frozenset[str]:
        """The builds removing the item can change: those reading a manifest it edits (all of
        them for the workspace root, which every build reads)."""
        files = {checker.real(e.file) for e in item[1].edits}
        if checker.root is None or checker.root in files:
            return everything
        return frozenset(b.label for b in member_builds if b.manifests & files)

    reaches = {id(it): reach(it) for it in items}
    # an edit's round comes after every earlier edit (in `order`) that reaches one of its builds:
    # its own trial then sees their answers, as in the one-at-a-time pass
    rounds: list[list] = []
    last: dict[str, int] = {}                # build label -> the latest round of an edit reaching it
    for it in order:
        r = 1 + max((last.get(label, -1) for label in reaches[id(it)]), default=-1)
        for label in reaches[id(it)]:
            last[label] = r
        rounds += [[] for _ in range(r + 1 - len(rounds))]
        rounds[r].append(it)
    kept = list(items)
    edited = _Edited(kept, checker)
    current = verdict
    for batch in rounds:
        trying: set[int] = set()
        for it in batch:
            if len(kept) - len(trying) < 2:
                break                        # the last edit left is kept without a check
            edited.add(it, -1)
            if not _needed(it, edited, checker, points):
                trying.add(id(it))
            edited.add(it, 1)
        if not trying:
            continue
        trial = checker.check(edits_of([x for x in kept if id(x) not in trying]), current, members_only=True)
        refused: set[int] = set()
        for build, _why in trial.failures:
            blamed = {t for t in trying if build.label in reaches[t]}
            if not blamed:
                return None                  # a failure no removal explains: complete checks decide
            refused |= blamed
        for x in kept:
            if id(x) in trying and id(x) not in refused:
                edited.add(x, -1)
        kept = [x for x in kept if id(x) not in trying or id(x) in refused]
        if refused:
            # the refused edits' builds as they were, the others' as the trial found them
            back = frozenset().union(*(reaches[t] for t in refused))
            before = {b.label: b for b in current.builds}
            builds = [before[b.label] if b.label in back else b for b in trial.builds]
            trial = Verdict(checker.texts_for(edits_of(kept)), [], builds, complete=False)
        current = trial
    return kept, current


class _Edited:
    """How many of a set of chosen items edit each file and each `[workspace.dependencies]` entry."""

    def __init__(self, items, checker: Checker):
        self.checker = checker
        self.files: dict[Path, int] = {}
        self.inherited: dict[str, int] = {}
        for it in items:
            self.add(it, 1)

    def add(self, item, n: int) -> None:
        for e in item[1].edits:
            if e.table == "workspace.dependencies":
                self.inherited[e.dependency] = self.inherited.get(e.dependency, 0) + n
            else:
                f = self.checker.real(e.file)
                self.files[f] = self.files.get(f, 0) + n


def _needed(item, others: _Edited, checker: Checker, points: list[_Point]) -> bool:
    """`others`: the edits besides the item's."""
    i = item[0][0]
    if i is None:
        return False
    for build in checker.base_failing_with(points[i].local):
        if (not any(others.files.get(f) for f in build.manifests)
                and not any(others.inherited.get(d) for d in build.inherits)):
            return True
    return False


# -- where to cut -------------------------------------------------------------------------------


def _edit_points(analysis: Analysis) -> list[_Point]:
    g = analysis.graph
    res = analysis.resolution
    found: dict[tuple, set[str]] = {}
    for culprit in analysis.culprits:
        for path in culprit.paths:
            last_local = max(i for i, n in enumerate(path) if n[1].path)
            if last_local + 1 >= len(path):
                continue
            local = path[last_local][1]
            data = g.get_edge_data(path[last_local], path[last_local + 1]) or {}
            name = data.get("dep")
            if name is None:
                continue
            crate = path[last_local + 1][1]
            opening = {n[3] for n in path[last_local + 1:] if n[0] == "feat" and n[1] == crate}
            found.setdefault((local, name, crate), set()).update(opening)
    points = []
    for (local, name, crate), opening in found.items():
        dep = next((d for d in res.deps_of(local) if d.name == name), None)
        if dep is not None and dep.source == "registry":
            points.append(_Point(local, dep, crate, frozenset(opening)))
    return sorted(points, key=lambda p: (p.local.name, p.dep.name))


def _entry_file(p: _Point, ws) -> Path:
    return Path(p.local.path) / "Cargo.toml"


def _feature_edit(p: _Point, ws, display, add=(), remove=(), default_features=None) -> list[Edit]:
    """Edits to one dependency entry; a `workspace = true` entry is split as cargo requires:
    default-features and the root's own features live in `[workspace.dependencies]`. When the
    root's default features change, every member that inherits the entry changes with it, so the
    added features go to the root too: each inheriting member keeps a working TLS backend."""
    member_file = display(_entry_file(p, ws))
    table = table_name(p.dep.table)
    if not p.dep.inherited:
        return [Edit(member_file, table, p.dep.name, tuple(add), tuple(remove), default_features)]
    root_spec = ((ws.root.workspace or {}).get("dependencies") or {}).get(p.dep.name, {})
    root_feats = set(root_spec.get("features", [])) if isinstance(root_spec, dict) else set()
    member_spec = _member_spec(ws, p)
    member_feats = set(member_spec.get("features", [])) if isinstance(member_spec, dict) else set()
    edits = []
    root_remove = tuple(f for f in remove if f in root_feats)
    at_root = default_features is not None
    if root_remove or at_root:
        edits.append(Edit(display(ws.root.path), "workspace.dependencies", p.dep.name,
                          tuple(add) if at_root else (), root_remove, default_features))
    member_remove = tuple(f for f in remove if f in member_feats)
    if (add and not at_root) or member_remove:
        edits.append(Edit(member_file, table, p.dep.name, () if at_root else tuple(add), member_remove, None))
    return edits


def _member_spec(ws, p: _Point):
    m = ws.manifests[Path(p.local.path)]
    node = m.data
    for part in p.dep.table:
        node = node.get(part, {})
    return node.get(p.dep.name, {})


# -- candidates ----------------------------------------------------------------------------------


def _pkg(res: Resolution, pid: PkgId) -> Package:
    return res.packages[pid]


def _reaches(res: Resolution, index_pkg, pkg: Package, feature: str, goal, seen=None) -> bool:
    """Does turning `feature` of `pkg` on reach `goal(pkg, value)`? Walks feature values through
    dependency features, picking each dependency's resolved version (or the newest matching)."""
    seen = seen if seen is not None else set()
    key = (pkg.id, feature)
    if key in seen:
        return False
    seen.add(key)
    for fv in pkg.features.get(feature, ()):
        if goal(pkg, fv):
            return True
        if fv[0] == "feat" and _reaches(res, index_pkg, pkg, fv[1], goal, seen):
            return True
        if fv[0] == "depfeat":
            for i, d in enumerate(pkg.deps):
                if d.name != fv[1] or d.kind == "dev":
                    continue
                child = index_pkg(pkg, i, d)
                if child is not None and _reaches(res, index_pkg, child, fv[2], goal, seen):
                    return True
    return False


def _resolver_lookup(res: Resolution):
    by_name = res.__dict__.get("_by_name")       # built once per resolution, not once per edit point
    if by_name is None:
        by_name = {}
        for p in res.packages.values():
            by_name.setdefault(p.name, []).append(p)
        res.__dict__["_by_name"] = by_name

    def lookup(pkg: Package, i: int, dep: Dep) -> Package | None:
        pid = res.edges.get((pkg.id, i))
        if pid is not None:
            return res.packages[pid]
        req = parse_req(dep.req)
        ok = [p for p in by_name.get(dep.package, ()) if req.matches(parse_version(p.id.version))]
        return max(ok, key=lambda p: parse_version(p.id.version)) if ok else None
    return lookup


def _vendored_candidates(p: _Point, res: Resolution, ws, rules, display, blocker: str):
    """Vendored remedies for one point, and the rules' remedies this version cannot take
    (as (kind, description, why))."""
    pkg = _pkg(res, p.crate)
    out: list[Remedy] = []
    named: dict[tuple[str, ...], tuple[str, str]] = {}
    available, unavailable = _rule_remedies(rules, pkg, "vendored-feature", "enable")
    for rule, rem in available:
        note = " ".join(n for n in (rule.notes, rem.notes or VENDORED_NOTE) if n)
        named.setdefault(tuple(rem.add_features), ("rule", note))
    lookup = _resolver_lookup(res)
    goal = lambda owner, fv: owner.name == blocker and fv == ("feat", "vendored")  # noqa: E731
    goal_dep = lambda owner, fv: fv[0] == "depfeat" and fv[2] == "vendored" and _dep_is(owner, fv[1], blocker)  # noqa: E731
    by_rule = {f for feats in named for f in feats}
    for f in sorted(pkg.features):
        if f in by_rule or f in pkg.implicit_features:
            continue
        if _reaches(res, lookup, pkg, f, lambda o, fv: goal(o, fv) or goal_dep(o, fv)):
            named.setdefault((f,), ("discovered", VENDORED_NOTE))
    if pkg.name == blocker and "vendored" in pkg.features:
        named.setdefault(("vendored",), ("discovered", VENDORED_NOTE))
    for feats, (source, note) in named.items():
        adds = tuple(f for f in feats if f not in p.dep.features)
        if not adds:
            continue
        out.append(Remedy("vendored-feature", source,
                          f"enable `{'`, `'.join(feats)}` of {pkg.name} {pkg.id.version}: OpenSSL is compiled from source and linked statically",
                          tuple(_feature_edit(p, ws, display, add=adds)), (note,)))
    return out, unavailable


def _rule_remedies(rules, pkg: Package, kind: str, verb: str):
    """The rules' remedies of `kind` for this version, as (rule, remedy) when the version has every
    feature they add, else as unavailable (kind, description, why)."""
    available, unavailable = [], []
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        for rem in rule.remedies:
            if rem.kind != kind:
                continue
            missing = [f for f in rem.add_features if f not in pkg.features]
            if missing:
                unavailable.append((kind, f"{verb} `{'`, `'.join(rem.add_features)}`",
                                    f"{pkg.name} {pkg.id.version} has no `{'`, `'.join(missing)}`"))
            else:
                available.append((rule, rem))
    return available, unavailable


def _dep_is(owner: Package, dep_name: str, crate: str) -> bool:
    return any(d.name == dep_name and d.package == crate for d in owner.deps)


def _rustls_candidates(p: _Point, res: Resolution, ws, rules, display):
    pkg = _pkg(res, p.crate)
    specs: list[tuple[str, tuple[str, ...], tuple[str, ...], bool | None, str]] = []
    available, unavailable = _rule_remedies(rules, pkg, "rustls", "switch to rustls with")
    for rule, rem in available:
        note = " ".join(n for n in (rule.notes, rem.notes) if n)
        specs.append(("rule", rem.add_features, rem.remove_features, rem.default_features, note))
    if not specs:
        for f in rustls_features(pkg):
            specs.append(("discovered", (f,), (), None, ""))
    out = []
    for source, add, remove_extra, df_rule, note in specs:
        needs_off = df_rule is False or ("default" in p.opening and p.dep.default_features)
        remove = [f for f in p.dep.features if (f in p.opening or f in remove_extra) and f not in add]
        readd: list[str] = []
        lost: list[str] = []
        if needs_off and p.dep.default_features:
            readd, lost = _defaults_to_readd(pkg, p, set(remove_extra) | set(add))
        kept = [f for f in p.dep.features if f not in remove]
        adds = tuple(dict.fromkeys(f for f in (*add, *readd) if f not in kept))
        if not adds and not remove and not needs_off:
            continue
        edits = _feature_edit(p, ws, display, add=adds, remove=tuple(remove),
                              default_features=False if needs_off and p.dep.default_features else None)
        if not edits:
            continue             # the entry already is what the switch would make it
        kept_defaults = f"; keeps the other default features ({', '.join(readd)})" if readd else ""
        notes = [note] if note else []
        if lost:
            notes.append(f"{pkg.name}'s default {'values' if len(lost) > 1 else 'value'} `{'`, `'.join(lost)}` cannot be "
                         f"re-added: a dependent can only name features, and no other feature of {pkg.name} turns "
                         f"{'them' if len(lost) > 1 else 'it'} on without OpenSSL")
        # a rule's switch that replaces a feature the entry names fits better than one that does not
        misfit = int(bool(remove_extra) and not set(remove_extra) & set(p.dep.features))
        out.append(Remedy("rustls", source,
                          f"switch {pkg.name} {pkg.id.version} to rustls with `{'`, `'.join(add)}`"
                          + (", default features off" if needs_off else "") + kept_defaults,
                          tuple(edits), tuple(notes), misfit))
    return out, unavailable


def _defaults_to_readd(pkg: Package, p: _Point, skip: set[str]) -> tuple[list[str], list[str]]:
    """The default feature values to turn on again once default features are off, as feature
    names a dependent may write. `dep:x` and `x/f` values cannot go into a dependency's
    `features` list: the feature of the package that names them is re-added instead; values no
    such feature (outside the path to OpenSSL) turns on are returned as lost."""
    readd: list[str] = []
    lost: list[str] = []
    values = pkg.raw_features.get("default", [])
    for v in values:
        if v in p.opening or v in skip:
            continue
        if not v.startswith("dep:") and "/" not in v:
            readd.append(v)
            continue
        names = sorted((f for f, vals in pkg.raw_features.items()
                        if f != "default" and v in vals and f not in p.opening and f not in skip),
                       key=lambda f: (len(pkg.raw_features[f]), len(f), f))
        if not names and v.startswith("dep:") and v[4:] in pkg.implicit_features:
            names = [v[4:]]
        if names:
            readd.append(names[0])
        else:
            lost.append(v)
    return list(dict.fromkeys(readd)), lost


def _scoped(rem: Remedy, p: _Point, scope: str, display) -> Remedy:
    """A vendored feature for one target family: a target-specific entry for the same dependency
    (cargo merges it with the plain one on matching targets). It keeps what the plain entry says
    about the dependency (optional, registry, package, default-features), so nothing but the
    feature changes on the scoped targets."""
    table = f"target.{scope}.dependencies"
    file = display(Path(p.local.path) / "Cargo.toml")
    feats = [f for e in rem.edits for f in e.add_features]
    optional = True if p.dep.optional else None
    if p.dep.inherited:
        add = {"workspace": True, "features": feats, "optional": optional}
    else:
        add = {"version": p.dep.req, "package": p.dep.package if p.dep.package != p.dep.name else None,
               "registry": p.dep.registry, "default-features": False if not p.dep.default_features else None,
               "features": feats, "optional": optional}
    return replace(rem, edits=(Edit(file, table, p.dep.name, add={k: v for k, v in add.items() if v is not None}),),
                   reason=rem.reason + f", only where {scope} holds")


def _openssl_dep_candidates(analysis: Analysis, ws, display, scope: str | None = None,
                            need: set[str] | None = None) -> list[Remedy]:
    """`need`: the members whose own build links an unvendored blocker (only they get the new
    dependency: a member that does not link OpenSSL should not start to)."""
    res = analysis.resolution
    target_units = {pid.name: pid for pid, side in res.units if side == TARGET_SIDE}
    choice = target_units.get("openssl") if analysis.blocker == "openssl-sys" else None
    if choice is None or "vendored" not in res.packages[choice].features:
        choice = target_units.get(analysis.blocker)
    if choice is None or "vendored" not in res.packages[choice].features:
        return []
    members = sorted({c.package for c in analysis.culprits} & need if need else {c.package for c in analysis.culprits})
    edits = sys_dep_edits(res, members, choice, "vendored", display, scope)
    if not edits:
        return []
    return [Remedy("openssl-dep", "discovered",
                   f"add `{choice.name}` {choice.version} with `vendored`: features unify, so every path to "
                   f"{analysis.blocker} gets the vendored build",
                   tuple(edits), (VENDORED_NOTE,))]


def sys_dep_edits(res: Resolution, members, choice: PkgId, feature: str, display, scope: str | None) -> list[Edit]:
    """Each member's edit for depending on `choice` directly with `feature` (features unify into
    every path): the feature added to an entry it already has, else a new entry at that version."""
    edits = []
    by_name = {pid.name: pid for pid in res.input.selected}
    for name in members:
        member = by_name.get(name)
        if member is None:
            continue
        file = display(Path(member.path) / "Cargo.toml")
        existing = [d for d in res.deps_of(member) if d.kind == "normal" and d.target is None
                    and d.package == choice.name and scope is None]
        if existing:
            d = existing[0]
            if feature not in d.features:
                edits.append(Edit(file, table_name(d.table), d.name, (feature,)))
            continue
        if any(d.name == choice.name and d.table == ("dependencies",) for d in res.deps_of(member)):
            continue     # [dependencies] already uses the key for another crate; leave it to the user
        table = "dependencies" if scope is None else f"target.{scope}.dependencies"
        edits.append(Edit(file, table, choice.name, add={"version": choice.version, "features": [feature]}))
    return edits


def _mistakes(p: _Point, res: Resolution, rules) -> list[str]:
    """The common mistake: a rustls feature asked for while default features keep native-tls."""
    pkg = _pkg(res, p.crate)
    rustls_names = set(rustls_features(pkg))
    for rule in rules_for(rules, pkg.name, pkg.id.version):
        rustls_names |= {f for rem in rule.remedies if rem.kind == "rustls" for f in rem.add_features}
    asked = [f for f in p.dep.features if f in rustls_names or "rustls" in f]
    if asked and p.dep.default_features and "default" in p.opening:
        return [f"{p.local.name}: `{p.dep.name}` asks for `{asked[0]}` but keeps default features on, so "
                f"{pkg.name}'s default TLS (native-tls, OpenSSL) is still built; set `default-features = false`"]
    return []


def _why_unfixable(points, per_point, globals_, strategy, res) -> str:
    if strategy != "auto":
        kind = STRATEGIES[strategy]
        if not any(per_point) and not globals_:
            names = ", ".join(f"{p.crate.name} {p.crate.version}" for p in points) or "the culprits"
            return f"no `{kind}` remedy exists for {names}"
        return f"no combination of `{kind}` remedies removes the unvendored OpenSSL from the build"
    return "no remedy removes the unvendored OpenSSL from the build (no vendored or rustls feature, and no openssl dependency can be added)"


def _no_remedy(p: _Point, res: Resolution, strategy: str, rules=(), scope: str | None = None) -> str:
    pkg = _pkg(res, p.crate)
    offered = [f for f in _remedy_features(pkg, rules) if f in p.dep.features]
    if offered:
        return (f"`{p.local.name}` already asks {p.dep.name} for `{'`, `'.join(offered)}`; OpenSSL reaches it through "
                f"features other packages of the build turn on")
    what = {"vendored": "vendored feature", "rustls": "rustls feature"}.get(strategy, "vendored or rustls feature")
    if scope is not None:
        what = "vendored feature"
    return f"{p.crate.name} {p.crate.version} has no {what} in this registry"


def _remedy_features(pkg: Package, rules) -> list[str]:
    """Features of a package version a remedy could use: its rules' (when present), else names
    that say vendored OpenSSL or a rustls backend."""
    out = [f for rule in rules_for(rules, pkg.name, pkg.id.version) for rem in rule.remedies
           for f in rem.add_features[:1] if all(x in pkg.features for x in rem.add_features)]
    out += [f for f in sorted(pkg.features) if f not in pkg.implicit_features and not f.startswith("_")
            and ("vendored" in f or f == "static-ssl")]
    out += rustls_features(pkg)
    return list(dict.fromkeys(out))


def _what_would_fix(p: _Point, res: Resolution, rules, versions) -> str:
    """A newer version of the crate that has a remedy feature, or a patch."""
    pkg = _pkg(res, p.crate)
    candidates: list[Package] = []
    if versions is not None:
        try:
            candidates = list(versions(pkg.name, p.dep.registry) or [])
        except (KeyError, LookupError):
            candidates = []
    try:
        current = parse_version(pkg.id.version)
        newer = sorted((q for q in candidates if not q.yanked and parse_version(q.id.version) > current),
                       key=lambda q: parse_version(q.id.version))
    except SemverError:
        newer = []
    for q in newer:
        feats = _remedy_features(q, rules)
        if feats:
            return (f"{q.name} {q.id.version} has `{feats[0]}`: require that version "
                    f"(`{p.dep.name} = \"{q.id.version}\"`) and run again")
    return (f"no version of {pkg.name} in this registry has one: [patch] it with a fork that has a vendored "
            f"or rustls feature, or replace {p.dep.name}")
