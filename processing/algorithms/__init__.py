"""Seg's Processing algorithms: thin layers over seg_qgis_plugin.core (parameters in, one engine
call, outputs out)."""
