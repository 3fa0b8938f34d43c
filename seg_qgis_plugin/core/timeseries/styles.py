"""QGIS styles stored inside a GeoPackage (its `layer_styles` table, which QGIS reads as the
layer's default style), so a layer written by the engine opens styled in QGIS. Plain SQLite: no
QGIS needed to write them."""
from __future__ import annotations

import sqlite3
from typing import Dict, Tuple
from xml.sax.saxutils import quoteattr

_SYMBOL = """<symbol type="fill" name="{i}" alpha="{alpha}" clip_to_extent="1" force_rhr="0">
<layer class="SimpleFill" enabled="1" locked="0" pass="0">
<prop k="color" v="{r},{g},{b},255"/><prop k="outline_color" v="{r},{g},{b},255"/>
<prop k="outline_style" v="solid"/><prop k="outline_width" v="0.4"/><prop k="outline_width_unit" v="MM"/>
<prop k="style" v="solid"/></layer></symbol>"""


def categorized_qml(field: str, colours: Dict[str, Tuple[int, int, int]], alpha: float = 0.7) -> str:
    """A QGIS style (QML) drawing polygons by the value of `field`: one solid fill per category."""
    categories = "".join(f'<category render="true" value={quoteattr(v)} symbol="{i}" label={quoteattr(v)}/>'
                         for i, v in enumerate(colours))
    symbols = "".join(_SYMBOL.format(i=i, alpha=alpha, r=c[0], g=c[1], b=c[2]) for i, c in enumerate(colours.values()))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.22.0\" styleCategories=\"Symbology\">"
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" enableorderby="0" forceraster="0">'
            f"<categories>{categories}</categories><symbols>{symbols}</symbols></renderer-v2></qgis>")


def add_gpkg_style(path: str, layer: str, qml: str, name: str = "seg") -> None:
    """Store `qml` as the default style of `layer` in the GeoPackage at `path`."""
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT,
            f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256),
            styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30),
            ui TEXT(30), update_time DATETIME DEFAULT CURRENT_TIMESTAMP)""")
        db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) VALUES ('layer_styles', 'attributes', 'layer_styles')")
        column = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
        db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
        db.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
                   "styleQML, styleSLD, useAsDefault, description, owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                   (layer, column[0] if column else "geom", name, qml, "written by Seg"))
