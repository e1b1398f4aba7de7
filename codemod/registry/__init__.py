"""Registry index data: parsing index lines and the sources that serve them.

Names are loaded on first use: a remembered answer reads the index cache (``cache``) and cargo's
configuration (``config``) without importing the index parser or an HTTP client."""

__all__ = ["IndexSource", "parse_index_file", "open_index"]


def __getattr__(name: str):
    if name in __all__:
        from . import index

        return getattr(index, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
