"""QGIS styles for the label layers Seg writes, so a layer opens styled however it is added to QGIS
(by the plugin, by Processing, or dragged in from a file manager).

Styles are QML text as QGIS 3.22 writes it (newer versions read it too), built without QGIS: the
engine and the CLI run without it. A GeoPackage keeps the style as its layer's default style in
the `layer_styles` table (the convention QGIS's OGR provider reads and writes); other formats get
`<name>.qml` beside the file, which QGIS loads as the default style.

Kinds: "labels" (outlines coloured by class, no fill, so the imagery stays visible), "series"
(labels through time: outlines by status, with temporal properties on the `date` field), "drift"
(tiles graduated by their drift value, semi-transparent).
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import escape, quoteattr

from ..errors import SettingError

KINDS = ("labels", "series", "drift")
OUTLINE_MM = 0.6
STYLE_NAME = "seg"
STATUS_COLOURS = {  # series statuses (core/timeseries/propagate.py) and review statuses
    "accepted": "#1a9641", "prelabel": "#2c7bb6", "kept": "#2c7bb6", "lost": "#d7191c", "uncertain": "#fdae61", "outside": "#969696",
    "edited": "#fdae61", "rejected": "#7b3294",
}
DRIFT_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c")
_HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


@dataclass(frozen=True)
class VectorStyle:
    """How a label layer looks: kind (KINDS); colours: class name -> '#rrggbb' (the ontology's;
    classes it lacks get the fixed palette)."""

    kind: str = "labels"
    colours: Mapping[str, str] = field(default_factory=dict)

    def qml(self, classes: Iterable[str] = ()) -> str:
        """The QML of this style for a layer holding `classes` (the values of its `class` field)."""
        if self.kind == "series":
            return series_qml()
        if self.kind == "drift":
            return drift_qml()
        return labels_qml(class_colours(classes, self.colours))


StyleChoice = Union[None, str, VectorStyle, Callable[[str], None]]


def vector_style(choice: StyleChoice) -> Optional[VectorStyle]:
    """A VectorStyle from a kind name or a VectorStyle (None: no style)."""
    if choice is None or isinstance(choice, VectorStyle):
        return choice
    if choice not in KINDS:
        raise SettingError(f"A layer style is one of {', '.join(KINDS)}, not {choice!r}.")
    return VectorStyle(kind=choice)


def ontology_style(ontology) -> VectorStyle:
    """The label style with an ontology's class colours (None: the fixed palette)."""
    return VectorStyle(colours={c.name: c.color for c in ontology} if ontology is not None else {})


def class_colours(classes: Iterable[str], known: Mapping[str, str] = None) -> dict:
    """class -> '#rrggbb', sorted by name: `known` colours first, else the fixed palette by rank."""
    from ..engine.ontology import default_color

    known = known or {}
    names = sorted({str(c) for c in classes if c not in (None, "")})
    return {name: known.get(name) or default_color(rank) for rank, name in enumerate(names, start=1)}


def labels_qml(colours: Mapping[str, str]) -> str:
    """Outlines coloured by `class`, no fill; a grey outline for any other value."""
    categories = [(name, name, _outline(colour)) for name, colour in colours.items()]
    categories.append(("", "other", _outline("#808080")))
    return _document(_categorized("class", categories))


def series_qml() -> str:
    """Outlines coloured by `status` (lost dashed, uncertain and outside dotted), shown on their
    `date` by the Temporal Controller."""
    pen = {"lost": "dash", "uncertain": "dot", "outside": "dot"}
    categories = [(status, status, _outline(colour, pen.get(status, "solid"))) for status, colour in STATUS_COLOURS.items()]
    categories.append(("", "other", _outline("#808080")))
    return _document(_categorized("status", categories), temporal=_temporal("date"))


def drift_qml() -> str:
    """Tiles graduated by `drift_ratio` (local drift over its pair's threshold) in four classes
    around 1, half transparent."""
    bounds = (0.0, 0.5, 1.0, 2.0, 1e9)
    labels = ("below half the threshold: steady", "below the threshold", "1-2 x the threshold: changed (flagged)",
              "over 2 x the threshold: strong change (flagged)")
    ranges = [(bounds[i], bounds[i + 1], labels[i], _filled(DRIFT_COLOURS[i])) for i in range(4)]
    return _document(_graduated("drift_ratio", ranges), opacity=0.6)


def save_vector_style(path: str, layer: str, qml: str) -> str:
    """Store `qml` with the layer at `path`: the default style of `layer` in a GeoPackage, else
    `<name>.qml` beside the file. Returns where it went."""
    if path.lower().endswith(".gpkg"):
        add_geopackage_style(path, layer, qml)
        return path
    return write_qml_beside(path, qml)


def write_qml_beside(path: str, qml: str) -> str:
    """`qml` as `<name>.qml` beside `path` (QGIS's default style file for it), atomically."""
    from .atomic import write_text_atomic

    return write_text_atomic(qml_beside(path), qml)


def qml_beside(path: str) -> str:
    """Where QGIS looks for the default style of the file `path`: `<name>.qml` beside it."""
    return os.path.splitext(path)[0] + ".qml"


LAYER_STYLES = """CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT,
    f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256),
    styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30),
    ui TEXT(30), update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""


def add_geopackage_style(path: str, layer: str, qml: str, name: str = STYLE_NAME) -> None:
    """Store `qml` as the default style of `layer` in the GeoPackage at `path` (one transaction;
    a style of the same name is replaced, other styles stop being the default)."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute(LAYER_STYLES)
            db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) SELECT 'layer_styles', 'attributes', "
                       "'layer_styles' WHERE NOT EXISTS (SELECT 1 FROM gpkg_contents WHERE table_name = 'layer_styles')")
            column = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
            db.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?", (layer, name))
            db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
            db.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
                       "styleQML, styleSLD, useAsDefault, description, owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                       (layer, column[0] if column else "geom", name, qml, "written by Seg"))
    finally:
        db.close()


def extend_geopackage_labels_style(path: str, layer: str, classes: Iterable[str], known: Mapping[str, str] = None) -> bool:
    """After labels were appended to `layer`: add the classes its Seg-written style lacks, keeping
    the colours it has (a style the user saved, or one by class names only, is left alone).
    Returns whether the style changed."""
    import xml.etree.ElementTree as ET

    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND styleName = ? AND useAsDefault = 1 "
                         "AND description = 'written by Seg'", (layer, STYLE_NAME)).fetchone()
    except sqlite3.Error:
        row = None
    finally:
        db.close()
    if row is None:
        return False
    renderer = ET.fromstring(row[0].split("\n", 1)[-1]).find("renderer-v2")
    if renderer is None or renderer.get("type") != "categorizedSymbol" or renderer.get("attr") != "class":
        return False
    outline = {symbol.get("name"): symbol.find("./layer/prop[@k='outline_color']") for symbol in renderer.iter("symbol")}
    present = {}
    for category in renderer.iter("category"):
        prop = outline.get(category.get("symbol"))
        if category.get("value") and prop is not None:
            present[category.get("value")] = "#" + "".join(f"{int(v):02x}" for v in prop.get("v").split(",")[:3])
    missing = {str(c) for c in classes if c not in (None, "")} - set(present)
    if not missing:
        return False
    add_geopackage_style(path, layer, labels_qml(class_colours([*present, *missing], {**(known or {}), **present})))
    return True


# ---- QML pieces (as QGIS 3.22 writes them) ----

def _document(renderer: str, opacity: float = 1.0, temporal: str = "") -> str:
    categories = "Symbology|Temporal" if temporal else "Symbology"
    return (f'{_HEADER}<qgis version="3.22.0-Białowieża" styleCategories="{categories}">\n{temporal}{renderer}\n'
            f"<blendMode>0</blendMode>\n<featureBlendMode>0</featureBlendMode>\n<layerOpacity>{opacity:g}</layerOpacity>\n</qgis>\n")


def _categorized(attr: str, categories: Sequence[Tuple[str, str, str]]) -> str:
    rows = "".join(f'<category render="true" value={quoteattr(value)} symbol="{i}" label={quoteattr(label)}/>\n'
                   for i, (value, label, _) in enumerate(categories))
    symbols = "".join(symbol.format(name=i) for i, (_, _, symbol) in enumerate(categories))
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(attr)} symbollevels="0" enableorderby="0" forceraster="0">\n'
            f"<categories>\n{rows}</categories>\n<symbols>\n{symbols}</symbols>\n<rotation/>\n<sizescale/>\n</renderer-v2>")


def _graduated(attr: str, ranges: Sequence[Tuple[float, float, str, str]]) -> str:
    rows = "".join(f'<range render="true" lower="{lo:.6f}" upper="{hi:.6f}" symbol="{i}" label={quoteattr(label)}/>\n'
                   for i, (lo, hi, label, _) in enumerate(ranges))
    symbols = "".join(symbol.format(name=i) for i, (_, _, _, symbol) in enumerate(ranges))
    return (f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(attr)} graduatedMethod="GraduatedColor" symbollevels="0" '
            f'enableorderby="0" forceraster="0">\n<ranges>\n{rows}</ranges>\n<symbols>\n{symbols}</symbols>\n'
            f'<mode name="manual"/>\n<rotation/>\n<sizescale/>\n</renderer-v2>')


def _temporal(date_field: str) -> str:
    """Each feature shown on its date (the field holds ISO dates as text)."""
    expression = escape(f'to_datetime("{date_field}")', {'"': "&quot;"})
    return (f'<temporal enabled="1" mode="4" startField="" endField="" durationField="" durationUnit="d" fixedDuration="0" '
            f'accumulate="0" startExpression="{expression}" endExpression="{expression}" limitMode="1">\n'
            "<fixedRange><start></start><end></end></fixedRange>\n</temporal>\n")


def _outline(colour: str, pen: str = "solid") -> str:
    return _fill_symbol(_rgba(colour, 0), _rgba(colour, 255), "no", pen)


def _filled(colour: str) -> str:
    return _fill_symbol(_rgba(colour, 255), "60,60,60,255", "solid", "solid", width=0.2)


def _fill_symbol(fill: str, line: str, style: str, pen: str, width: float = OUTLINE_MM) -> str:
    props = {"border_width_map_unit_scale": "3x:0,0,0,0,0,0", "color": fill, "joinstyle": "bevel", "offset": "0,0",
             "offset_map_unit_scale": "3x:0,0,0,0,0,0", "offset_unit": "MM", "outline_color": line, "outline_style": pen,
             "outline_width": f"{width:g}", "outline_width_unit": "MM", "style": style}
    body = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return ('<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">{body}</layer></symbol>\n')


def _rgba(colour: str, alpha: int) -> str:
    return f"{int(colour[1:3], 16)},{int(colour[3:5], 16)},{int(colour[5:7], 16)},{alpha}"


def layer_qml(choice: StyleChoice, field_names: Sequence[str], classes: Iterable[str] = ()) -> Optional[str]:
    """The QML for a layer with these fields, or None when `choice` is none or the layer lacks the
    field the style draws by (a "labels" style needs `class`, "series" `status`, "drift" `drift`)."""
    style = vector_style(choice)
    needed = {"labels": "class", "series": "status", "drift": "drift"}
    if style is None or needed[style.kind] not in field_names:
        return None
    return style.qml(classes)
