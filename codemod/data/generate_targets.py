"""Regenerate targets.json from the installed rustc: ``python -m codemod.data.generate_targets``.

Each built-in target maps to the cfg facts ``rustc --print cfg --target T`` prints
(``debug_assertions`` is left out: it belongs to the build profile, not the target).
``crt_static_respected`` lists the targets on which ``-C target-feature=+crt-static`` /
``-crt-static`` changes ``target_feature = "crt-static"`` (rustc ignores the flag elsewhere).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

CRT_STATIC = 'target_feature="crt-static"'


def cfg_facts(triple: str, *flags: str) -> list[str]:
    out = subprocess.run(
        ["rustc", "--print", "cfg", "--target", triple, *flags],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.splitlines() if line and line != "debug_assertions"]


def crt_static_respected(triple: str) -> bool:
    on = CRT_STATIC in cfg_facts(triple, "-C", "target-feature=+crt-static")
    off = CRT_STATIC in cfg_facts(triple, "-C", "target-feature=-crt-static")
    return on != off


def main() -> None:
    triples = subprocess.run(
        ["rustc", "--print", "target-list"], check=True, capture_output=True, text=True
    ).stdout.split()
    data = {}
    respected = []
    for t in triples:
        try:
            data[t] = cfg_facts(t)
            if crt_static_respected(t):
                respected.append(t)
        except subprocess.CalledProcessError:
            continue
    version = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    out = Path(__file__).with_name("targets.json")
    doc = {"rustc": version, "targets": data, "crt_static_respected": sorted(respected)}
    out.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(data)} targets written to {out}")


if __name__ == "__main__":
    main()
