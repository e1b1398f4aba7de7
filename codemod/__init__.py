"""cargo-static-fix: find and fix what pulls the system OpenSSL into a static Rust build."""

__version__ = "0.1.0"
