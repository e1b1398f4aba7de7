"""The tool's own exception types; the CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class CodemodError(Exception):
    """An error the user can act on; ``str()`` is the whole message."""


class ManifestError(CodemodError):
    pass


class RegistryError(CodemodError):
    pass


class ResolveError(CodemodError):
    pass


class TargetError(CodemodError):
    pass


class PlanError(CodemodError):
    """A candidate fix could not be checked (the registry failed, an edit cargo would reject): the
    run stops; this is never taken as "no remedy"."""
