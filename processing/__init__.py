"""Seg's Processing provider. Imported only as `seg_qgis_plugin.processing`: QGIS's own
Processing framework owns the top-level name `processing`."""
if __name__ == "processing":
    raise ImportError("Seg's processing package must be imported as seg_qgis_plugin.processing, not as top-level 'processing'.")
