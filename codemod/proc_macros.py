"""Which crates are proc macros.

The index does not say (cargo learns it from the downloaded manifest's `[lib] proc-macro = true`),
yet it decides whether a crate's dependencies are built for the host. We assume a registry crate is
a proc macro when it is on the list below (common proc-macro crates checked by hand), or when its
name ends the way proc-macro crates are conventionally named *and* it depends on proc-macro2, syn
or quote. Local packages are read from their Cargo.toml, so the assumption only touches registry
crates.
"""

from __future__ import annotations

KNOWN = frozenset("""
async-stream-impl async-trait clap_derive ctor darling_macro derive_more displaydoc enum-as-inner
futures-macro num-derive num_enum_derive openssl-macros paste pin-project-internal prost-derive
rustversion serde_derive serde_repr sqlx-macros strum_macros thiserror-impl tokio-macros
tracing-attributes wasm-bindgen-macro yoke-derive zerofrom-derive zerovec-derive
""".split())

_SUFFIXES = ("-derive", "_derive", "-macros", "_macros", "-macro", "_macro", "-impl", "_impl", "-attributes")
_MACRO_DEPS = frozenset({"proc-macro2", "syn", "quote"})


def is_proc_macro(name: str, deps) -> bool:
    if name in KNOWN:
        return True
    if not name.endswith(_SUFFIXES):
        return False
    return any(d.package in _MACRO_DEPS and d.kind == "normal" and not d.optional for d in deps)
