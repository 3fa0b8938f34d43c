"""Seg: Segment Anything for maps. QGIS loads the plugin through `classFactory`; everything else
is a plain Python library (`seg_qgis_plugin.core`, `seg_qgis_plugin.api`) and the `seg` command."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from . import deps
    from .qgis_adapters.deps_task import activate_private_folder, private_folder
    from .qgis_adapters.host import prefer_private, protect_qgis, share_proj_data
    from .plugin import SegPlugin

    protect_qgis()  # before anything can import pyproj or triton
    activate_private_folder()  # packages installed earlier by the plugin into its private folder
    prefer_private(private_folder())  # the few it needs newer than QGIS's Python has (sympy for torch)
    share_proj_data(private_folder())  # before rasterio or pyogrio load: their GDAL uses QGIS's PROJ
    deps.advise_from_qgis()  # what is missing is installed with the dock's button here, not with pip
    return SegPlugin(iface)
