"""Every job Seg does, as a request value and one engine entry.

Each module here holds one job: `Request` (a frozen dataclass: the job's options, typed, with
defaults and ranges, validated when it is made), `RETURNS` (what the job makes: "labels" for a
layer, "rows" for a table, "path" for a file or folder) and `run(request, progress=None,
sink=None) -> JobResult`. The CLI parses its flags into a Request, Processing reads its parameters
into one, the API's keyword arguments are its fields and the dock builds them, so a job behaves
the same from every door; a Dask worker receives the same value and a resume manifest
fingerprints it (base.fingerprint).

    from seg_qgis_plugin.core.jobs import prelabel
    result = prelabel.run(prelabel.Request("ortho.tif", prompts="boxes.gpkg", out="labels.gpkg"))
"""
from __future__ import annotations

import importlib

# job name (the API function) -> module of this package
JOBS = {
    "segment": "segment",
    "prelabel": "prelabel",
    "encode": "encode",
    "assist": "assist",
    "rank_tiles": "rank_tiles",
    "qa": "qa",
    "agreement": "agreement",
    "propagate": "propagate",
    "change": "change",
    "drift": "drift",
    "export_training": "export_training",
    "rasterize": "rasterize",
    "polygonize": "polygonize",
}


def job(name: str):
    """The module of job `name` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{JOBS[name]}")
