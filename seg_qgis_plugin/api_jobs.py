"""The API's job functions: each one's keyword arguments are the fields of its request
(core/jobs/<job>.py `Request`), so `seg.assist(raster, labels="accepted.gpkg", out="pre.gpkg")`
runs exactly what `seg assist` and seg:assist run. Layers come back as GeoDataFrames (their
`attrs["outputs"]` naming the files written), tables as DataFrames, rasters and folders as paths.
"""
from __future__ import annotations

import inspect
import warnings


class JobFunction:
    """A job as a function: builds the request from the arguments, runs it, returns Python values."""

    def __init__(self, name: str):
        self.__name__ = self.__qualname__ = name

    def _module(self):
        from .core.jobs import job

        return job(self.__name__)

    @property
    def __signature__(self):
        return inspect.signature(self._module().Request)

    @property
    def __doc__(self):
        module = self._module()
        return f"{module.__doc__}\n\nArguments: the fields of {module.__name__}.Request.\n\n{module.Request.__doc__}"

    def __call__(self, *args, **kwargs):
        from .core.errors import SegWarning
        from .core.jobs.base import Collect

        module = self._module()
        request = module.Request(*args, **kwargs)
        sink = Collect() if module.RETURNS == "labels" else None
        result = module.run(request, sink=sink)
        for note in result.notes:
            warnings.warn(SegWarning(note), stacklevel=2)
        return python_value(module.RETURNS, result, sink)

    def __repr__(self) -> str:
        return f"<Seg job {self.__name__}>"


def python_value(returns: str, result, sink=None):
    """GeoDataFrame for a layer, DataFrame for a table, else the path the job wrote."""
    if returns == "labels":
        labels = sink.labels if sink is not None and not result.labels else (result.labels or [])
        table = frame(labels, result.details.get("crs") or (labels[0].crs if labels else None))
        table.attrs.update(outputs=dict(result.outputs), notes=list(result.notes), summary=result.details.get("summary"))
        return table
    if returns == "rows":
        import pandas as pd

        table = pd.DataFrame(result.rows or [])
        table.attrs.update(outputs=dict(result.outputs), notes=list(result.notes), summary=result.details.get("summary"))
        return table
    return next(iter(result.outputs.values()), None)


def frame(labels, crs):
    """Labels -> GeoDataFrame: Seg fields first, in schema order and types, then other fields."""
    import geopandas as gpd
    import pandas as pd

    from .core.engine.labels import FIELDS

    names = [n for n, _, _ in FIELDS]
    for lab in labels:
        names += [n for n in lab.attributes if n not in names]
    present = {n for lab in labels for n in lab.attributes}
    columns = {}
    for name in names:
        if labels and name not in present:
            continue
        values = [lab.attributes.get(name) for lab in labels]
        kind = next((k for n, k, _ in FIELDS if n == name), None)
        if kind == "float":
            columns[name] = pd.array([None if v is None else float(v) for v in values], dtype="float64")
        elif kind == "int":
            columns[name] = pd.array([0 if v is None else int(v) for v in values], dtype="int64")
        else:
            columns[name] = pd.array(["" if v is None and kind else v for v in values], dtype=object)
    return gpd.GeoDataFrame(columns, geometry=[lab.geometry for lab in labels], crs=crs)


