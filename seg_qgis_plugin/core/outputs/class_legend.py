"""Class names and colours carried by a class raster, so GDAL and QGIS show names, not numbers.

A class GeoTIFF gets
- a colour table (in the file; GeoTIFF allows one for uint8 and uint16 bands): code -> class colour,
- GDAL category names and a thematic raster attribute table (Value, Class, Red, Green, Blue) in a
  PAM sidecar `<file>.aux.xml`, GDAL's own place for them with GeoTIFF. GDAL reads both
  (`band.GetCategoryNames()`, `band.GetDefaultRAT()`), and QGIS labels the paletted classes with
  the category names. The sidecar is written with the standard library, so the engine needs no
  osgeo; it is moved into place together with the raster (see label_rasters._atomic).
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Dict

from ..engine.ontology import Ontology

MAX_CATEGORY_CODE = 65535  # a category list has one entry per value up to the highest code
_INTEGER, _STRING = 0, 2  # GDALRATFieldType
_MINMAX, _NAME, _RED, _GREEN, _BLUE = 5, 2, 6, 7, 8  # GDALRATFieldUsage


def write_colour_table(dst, ontology: Ontology) -> None:
    """The classes' colours as the colour table of band 1 of the open rasterio dataset `dst`
    (GeoTIFF holds one for uint8 and uint16 only; other types are left without)."""
    if len(ontology) and dst.dtypes[0] in ("uint8", "uint16"):
        colormap = {0: (0, 0, 0, 0)}
        colormap.update({c.code: (*_rgb(c.color), 255) for c in ontology})
        dst.write_colormap(1, colormap)


def write_categories(path: str, ontology: Ontology, background: str = "background") -> None:
    """Category names and a thematic attribute table into `path + '.aux.xml'` (a closed raster;
    codes up to 65535). Other PAM content already there is kept."""
    codes = {c.code: c for c in ontology}
    if not codes or max(codes) > MAX_CATEGORY_CODE:
        return
    root = _load_pam(path + ".aux.xml")
    band = root.find("PAMRasterBand[@band='1']")
    if band is None:
        band = ET.SubElement(root, "PAMRasterBand", band="1")
    for old in band.findall("CategoryNames") + band.findall("GDALRasterAttributeTable"):
        band.remove(old)
    names = ET.SubElement(band, "CategoryNames")
    for value in range(max(codes) + 1):
        ET.SubElement(names, "Category").text = codes[value].name if value in codes else (background if value == 0 else "")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for index, (name, kind, usage) in enumerate((("Value", _INTEGER, _MINMAX), ("Class", _STRING, _NAME),
                                                 ("Red", _INTEGER, _RED), ("Green", _INTEGER, _GREEN),
                                                 ("Blue", _INTEGER, _BLUE))):
        field = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(kind)
        ET.SubElement(field, "Usage").text = str(usage)
    for row, code in enumerate(sorted(codes)):
        element = ET.SubElement(table, "Row", index=str(row))
        for value in (code, codes[code].name, *_rgb(codes[code].color)):
            ET.SubElement(element, "F").text = str(value)
    ET.ElementTree(root).write(path + ".aux.xml", encoding="UTF-8", xml_declaration=False)


def read_class_names(dataset, path: str) -> Dict[int, str]:
    """code -> class name of a class raster: its `classes` metadata, else the category names of
    its `.aux.xml`, else nothing (callers then use the code itself)."""
    tagged = json.loads(dataset.tags().get("classes", "{}") or "{}")
    if tagged:
        return {int(code): str(name) for name, code in tagged.items()}
    sidecar = path + ".aux.xml"
    if not os.path.exists(sidecar):
        return {}
    try:
        band = ET.parse(sidecar).getroot().find("PAMRasterBand[@band='1']")
    except ET.ParseError:
        return {}
    categories = band.find("CategoryNames") if band is not None else None
    if categories is None:
        return {}
    return {value: (c.text or "") for value, c in enumerate(categories.findall("Category")) if value and (c.text or "").strip()}


def _load_pam(path: str) -> ET.Element:
    if os.path.exists(path):
        try:
            return ET.parse(path).getroot()
        except ET.ParseError:
            pass
    return ET.Element("PAMDataset")


def _rgb(color: str):
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
