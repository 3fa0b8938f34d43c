"""A Processing feature sink as the sink a job (core.jobs) adds its features to: opened on the
first feature, in that feature's CRS (a drift map's CRS is known only once the earliest raster is
found), or at the end in the job's CRS when it gave no feature."""
from __future__ import annotations

from typing import Sequence, Tuple, Union

from qgis.core import QgsFields, QgsProcessingException, QgsWkbTypes

from ...qgis_adapters.crs import crs_from_core
from ...qgis_adapters.sinks import add_features, make_fields


class LayerSink:
    """`add(item)` writes one object with `.geometry` (shapely), `.crs` and `.attributes` to the
    algorithm's feature sink `name`; `destination(crs)` opens it if no item did and gives its id."""

    def __init__(self, alg, parameters, context, name: str, fields: Union[QgsFields, Sequence[Tuple[str, str]]],
                 wkb_type=QgsWkbTypes.Type.MultiPolygon):
        self.alg, self.parameters, self.context, self.name = alg, parameters, context, name
        self.fields = fields if isinstance(fields, QgsFields) else make_fields([(n, kind) for n, kind, *_ in fields])
        self.wkb_type = wkb_type
        self.sink = self.dest = None
        self.count = 0

    def add(self, item) -> None:
        self._open(item.crs)
        self.count += add_features(self.sink, self.fields, [item])

    def destination(self, crs: str) -> str:
        self._open(crs)
        return self.dest

    def _open(self, crs: str) -> None:
        if self.sink is not None:
            return
        self.sink, self.dest = self.alg.parameterAsSink(self.parameters, self.name, self.context, self.fields, self.wkb_type,
                                                        crs_from_core(crs))
        if self.sink is None:
            raise QgsProcessingException(self.alg.invalidSinkError(self.parameters, self.name))
