"""Regenerate targets.json from the installed rustc: ``python -m codemod.data.generate_targets``.

Each built-in target maps to the cfg facts ``rustc --print cfg --target T`` prints
(``debug_assertions`` is left out: it belongs to the build profile, not the target).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def cfg_facts(triple: str) -> list[str]:
    out = subprocess.run(
        ["rustc", "--print", "cfg", "--target", triple],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.splitlines() if line and line != "debug_assertions"]


def main() -> None:
    triples = subprocess.run(
        ["rustc", "--print", "target-list"], check=True, capture_output=True, text=True
    ).stdout.split()
    data = {}
    for t in triples:
        try:
            data[t] = cfg_facts(t)
        except subprocess.CalledProcessError:
            continue
    version = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    out = Path(__file__).with_name("targets.json")
    out.write_text(json.dumps({"rustc": version, "targets": data}, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(data)} targets written to {out}")


if __name__ == "__main__":
    main()
