import numpy as np
from affine import Affine
from shapely.geometry import box

from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry, reproject_geometry

T = Affine(0.5, 0, 500000, 0, -0.5, 4650000)


def test_a_pixel_aligned_square_becomes_exactly_that_square():
    mask = np.zeros((50, 60), bool)
    mask[10:20, 30:45] = True
    geometry = mask_to_geometry(mask, T)
    assert geometry.equals(box(500015, 4649990, 500022.5, 4649995))
    assert mask_to_geometry(np.zeros((5, 5), bool), T) is None


def test_holes_specks_and_simplification():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 10:90] = True
    mask[40:42, 40:42] = False      # 1 m2 hole
    mask[20:40, 60:80] = False      # 100 m2 hole
    mask[95:97, 95:97] = True       # 1 m2 speck
    raw = mask_to_geometry(mask, T)
    assert len(raw.geoms) == 2 and len(raw.geoms[0].interiors) + len(raw.geoms[1].interiors) == 2
    clean = mask_to_geometry(mask, T, min_area=2.0, fill_holes=2.0)
    assert len(clean.geoms) == 1 and len(clean.geoms[0].interiors) == 1
    assert clean.area == 40 * 40 - 100
    filled = mask_to_geometry(mask, T, min_area=2.0, fill_holes=float("inf"))
    assert filled.area == 40 * 40
    stairs = np.tril(np.ones((60, 60), bool))
    simplified = mask_to_geometry(stairs, T, simplify=1.0)
    assert len(simplified.geoms[0].exterior.coords) < 10 < len(mask_to_geometry(stairs, T).geoms[0].exterior.coords)


def test_reprojection_keeps_edges_true_and_round_trips():
    square = box(500000, 4649000, 501000, 4650000)
    wgs = reproject_geometry(square, "EPSG:32633", "EPSG:4326")
    assert len(wgs.exterior.coords) > 100  # densified edges
    back = reproject_geometry(wgs, "EPSG:4326", "EPSG:32633")
    assert back.hausdorff_distance(square) < 1e-3
    assert reproject_geometry(square, "EPSG:32633", "EPSG:32633") is square
