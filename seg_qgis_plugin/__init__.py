"""Seg: Segment Anything for maps. QGIS loads the plugin through `classFactory`; everything else
is a plain Python library (`seg_qgis_plugin.core`) and the `seg` command."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import SegPlugin

    return SegPlugin(iface)
