"""Registry index data: parsing index lines and the sources that serve them."""

from .index import IndexSource, parse_index_file, open_index

__all__ = ["IndexSource", "parse_index_file", "open_index"]
