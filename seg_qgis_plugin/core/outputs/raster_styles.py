"""QGIS styles for the rasters Seg writes, as `<name>.qml` beside the GeoTIFF (QGIS loads it as the
raster's default style however the raster is added).

- probability and uncertainty: a semi-transparent ramp on a fixed 0..1 scale whose legend says
  what 0 and 1 mean; low values are transparent, so the imagery shows where nothing is found;
- class rasters: the classes' colours and names (background 0 transparent).
QML as QGIS 3.22 writes it, built without QGIS.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple
from xml.sax.saxutils import quoteattr

OVERLAY_OPACITY = 0.6
CLASS_OPACITY = 0.7
PROBABILITY_COLOUR = "#1a9641"
UNCERTAINTY_COLOUR = "#d7191c"
_HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
_MINMAX = ("<minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>"
           "<cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>"
           "<stdDevFactor>2</stdDevFactor></minMaxOrigin>")


def probability_qml(class_name: str = "", colour: Optional[str] = None) -> str:
    """Band 1 as the probability of `class_name`: 0 transparent, 1 in the class colour."""
    what = class_name or "the class"
    stops = ((0.0, "0 = not " + what, 0), (0.5, "0.5 = undecided", 110), (1.0, "1 = " + what, 255))
    return _ramp_qml(stops, colour or PROBABILITY_COLOUR)


def uncertainty_qml() -> str:
    """Band 1 as uncertainty: 0 (sure) transparent, 1 (unsure) red."""
    stops = ((0.0, "0 = sure", 0), (0.5, "0.5", 110), (1.0, "1 = unsure", 255))
    return _ramp_qml(stops, UNCERTAINTY_COLOUR)


def class_raster_qml(classes: Mapping[int, Tuple[str, str]], opacity: float = CLASS_OPACITY) -> str:
    """Paletted: code -> (name, '#rrggbb'); 0 (background) and codes not listed stay transparent."""
    entries = "".join(f'<paletteEntry value="{int(code)}" color="{colour}" alpha="255" label={quoteattr(name)}/>\n'
                      for code, (name, colour) in sorted(classes.items()) if int(code) != 0)
    renderer = (f'<rasterrenderer type="paletted" band="1" opacity="{opacity:g}" alphaBand="-1" nodataColor="">\n'
                f"<rasterTransparency/>\n{_MINMAX}\n<colorPalette>\n{entries}</colorPalette>\n</rasterrenderer>")
    return _document(renderer)


def ontology_palette(ontology) -> dict:
    """code -> (name, colour) of an ontology (core.engine.ontology.Ontology)."""
    return {c.code: (c.name, c.color) for c in ontology}


def write_raster_style(path: str, qml: str) -> str:
    """`qml` as `<name>.qml` beside the raster at `path`. Returns the style's path."""
    from .styles import write_qml_beside

    return write_qml_beside(path, qml)


def _ramp_qml(stops: Sequence[Tuple[float, str, int]], colour: str) -> str:
    items = "".join(f'<item label={quoteattr(label)} value="{value:g}" color="{colour}" alpha="{alpha}"/>\n'
                    for value, label, alpha in stops)
    legend = (f'<rampLegendSettings minimumLabel={quoteattr(stops[0][1])} maximumLabel={quoteattr(stops[-1][1])} prefix="" '
              'suffix="" direction="0" orientation="2" useContinuousLegend="1"/>\n')
    renderer = (f'<rasterrenderer type="singlebandpseudocolor" band="1" opacity="{OVERLAY_OPACITY:g}" alphaBand="-1" '
                f'classificationMin="0" classificationMax="1" nodataColor="">\n<rasterTransparency/>\n{_MINMAX}\n'
                '<rastershader><colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" '
                f'minimumValue="0" maximumValue="1" labelPrecision="2">\n{items}{legend}</colorrampshader></rastershader>\n'
                "</rasterrenderer>")
    return _document(renderer)


def _document(renderer: str) -> str:
    return (f'{_HEADER}<qgis version="3.22.0-Białowieża" styleCategories="Symbology|Rendering">\n'
            '<pipe>\n<provider><resampling enabled="false" maxOversampling="2" zoomedInResamplingMethod="nearestNeighbour" '
            f'zoomedOutResamplingMethod="nearestNeighbour"/></provider>\n{renderer}\n'
            '<brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
            '<huesaturation saturation="0" grayscaleMode="0" invertColors="0" colorizeOn="0" colorizeRed="255" '
            'colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>\n<rasterresampler maxOversampling="2"/>\n'
            "</pipe>\n<blendMode>0</blendMode>\n</qgis>\n")

