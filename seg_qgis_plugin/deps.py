"""The older name of seg_qgis_plugin.core.dependencies: one module object under both names, so that
`deps.check`, `deps._find_spec` and the rest are the engine's own (patching one patches the other)."""
import sys

from .core import dependencies as _dependencies

sys.modules[__name__] = _dependencies
