"""One error tree for every user-facing failure.

A `SegError` carries one sentence a user can act on. The CLI prints it and exits 2; QGIS shows it
in a QgsProcessingException or the message bar. Subclasses also derive from the builtin they
resemble, so callers that already catch `OSError` or `ValueError` keep working.
"""


class SegError(Exception):
    """Root of every error Seg raises on purpose."""


class RasterError(SegError, OSError):
    """A raster cannot be opened or read, or its georeferencing cannot be trusted."""


class CrsError(SegError, ValueError):
    """A CRS is missing, unknown, or a geometry comes without one."""


class SettingError(SegError, ValueError):
    """A parameter is out of range or inconsistent (tile size, overlap, bands, stretch)."""


class PromptError(SegError, ValueError):
    """A prompt is empty, malformed, or lies outside the raster."""


class CheckpointError(SegError, OSError):
    """A model checkpoint is missing, corrupt, or does not match the model type."""


class MissingDependency(SegError, ImportError):
    """An optional dependency (torch, segment-anything) is not installed."""


class OutputError(SegError, OSError):
    """An output cannot be written: bad path, existing file, wrong layer, full disk."""


class CacheError(SegError, OSError):
    """An embedding cache entry is unreadable or belongs to another raster or model."""


class OntologyError(SegError, ValueError):
    """An ontology is malformed (duplicate names or codes), or a class or code is not in it or does not fit."""


class Canceled(SegError):
    """The user canceled a long-running job; nothing half-written is left behind."""


class SegWarning(UserWarning):
    """A non-fatal oddity worth telling the user about."""
