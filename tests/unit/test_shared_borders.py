"""Shared borders: a new object cut by its neighbours on the pixel grid leaves no overlap and no
gap (the union of the neighbours is exactly the region they cover)."""
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely import union_all
from shapely.geometry import box

from seg_qgis_plugin.cli.main import main
from seg_qgis_plugin.core.engine.labels import Label, attributes
from seg_qgis_plugin.core.geo.shared_borders import burn, nearby_labels, resolve_overlaps, share_borders
from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry, reproject_geometry
from seg_qgis_plugin.core.outputs.vectors import read_labels, write_labels
from seg_qgis_plugin.demo.scene import write_scene

GRID = Affine(0.5, 0, 500000, 0, -0.5, 4650000)
CRS = "EPSG:32633"


def region(r0, r1, c0, c1, shape=(80, 80)):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_neighbours_share_their_border_exactly():
    old_mask = region(10, 40, 10, 40)
    new_mask = region(25, 60, 30, 70) | region(30, 34, 0, 12)  # overlaps the old one, and wraps round its corner
    old, new = mask_to_geometry(old_mask, GRID), mask_to_geometry(new_mask, GRID)
    cut = share_borders(new, GRID, [old])
    assert cut.is_valid and cut.intersection(old).area == 0
    assert cut.union(old).symmetric_difference(new.union(old)).area == 0  # no gap, no sliver
    # on the grid: exactly the new pixels that were not taken
    np.testing.assert_array_equal(burn([cut], (80, 80), GRID), new_mask & ~old_mask)
    # the shared part of the border is one line in both outlines
    shared = cut.boundary.intersection(old.boundary)
    assert shared.length == pytest.approx((10 + 15 + 4) * 0.5)


def test_a_new_object_inside_an_old_one_is_nothing_and_a_hole_stays_a_hole():
    old = mask_to_geometry(region(10, 40, 10, 40), GRID)
    assert share_borders(mask_to_geometry(region(15, 20, 15, 20), GRID), GRID, [old]) is None
    ring = mask_to_geometry(region(0, 50, 0, 50), GRID)
    cut = share_borders(ring, GRID, [old], fill_holes=float("inf"))  # the old object is not a hole to fill
    assert cut.intersection(old).area == 0 and cut.union(old).equals(ring)


def test_labels_off_the_grid_never_overlap_and_snap_closes_the_gap():
    x = lambda col: GRID.c + col * GRID.a
    y = lambda row: GRID.f + row * GRID.e
    hand_drawn = box(x(5), y(45), x(19.7), y(5))  # right edge inside pixel column 19
    new = mask_to_geometry(region(10, 40, 18, 30), GRID)
    cut = share_borders(new, GRID, [hand_drawn])
    gap = new.union(hand_drawn).difference(cut.union(hand_drawn)).area
    assert cut.intersection(hand_drawn).area == 0 and gap == pytest.approx(30 * 0.3 * 0.25)  # a 0.3-pixel sliver
    snapped = share_borders(new, GRID, [hand_drawn], snap=0.5)
    assert snapped.is_valid and snapped.intersection(hand_drawn).area < 1e-9
    assert new.union(hand_drawn).difference(snapped.union(hand_drawn)).area < 1e-9


def test_overlapping_objects_resolve_to_the_higher_score():
    masks = [region(0, 30, 0, 30), region(20, 50, 20, 50), region(10, 40, 25, 60)]
    scores = [0.8, 0.95, 0.9]
    labels = [Label(mask_to_geometry(m, GRID), CRS, attributes("tree", score=s)) for m, s in zip(masks, scores)]
    originals = [lab.geometry for lab in labels]
    kept = resolve_overlaps(labels, GRID)
    assert [lab.attributes["score"] for lab in kept] == scores  # input order kept
    assert kept[1].geometry.equals(originals[1])  # the best keeps all of itself
    for i in range(3):
        for j in range(i + 1, 3):
            assert kept[i].geometry.intersection(kept[j].geometry).area == 0
    assert union_all([lab.geometry for lab in kept]).symmetric_difference(union_all(originals)).area == 0
    stacked = np.zeros((80, 80), int)
    for lab in kept:
        stacked += burn([lab.geometry], (80, 80), GRID)
    assert stacked.max() == 1 and (stacked > 0).sum() == np.logical_or.reduce(masks).sum()


def test_nearby_labels_reads_only_what_is_near_in_the_callers_crs(tmp_path):
    near = box(500001, 4649990, 500005, 4649995)
    far = box(501000, 4649000, 501010, 4649010)
    lonlat = [reproject_geometry(g, CRS, "EPSG:4326") for g in (near, far)]
    write_labels([Label(g, "EPSG:4326", attributes("x")) for g in lonlat], str(tmp_path / "l.gpkg"), crs="EPSG:4326")
    (found,) = nearby_labels(str(tmp_path / "l.gpkg"), (500000, 4649980, 500010, 4650000), CRS)
    assert found.symmetric_difference(near).area < 1e-3
    assert nearby_labels(str(tmp_path / "absent.gpkg"), (0, 0, 1, 1), CRS) == []


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("scene") / "ortho.tif")
    return path, write_scene(path, 512, 512)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_prelabel_and_segment_with_no_overlap(capsys, scene, tmp_path):
    import pyogrio.raw
    from shapely import to_wkb

    path, truth = scene
    with rasterio.open(path) as ds:
        transform = ds.transform
    big = next(t for t in truth if t.name == "big pond")
    c0, r0, c1, r1 = big.box
    boxes = [box(*(transform * (c0, r1)), *(transform * (c1, r0))),  # the pond, and a box across its right half
             box(*(transform * ((c0 + c1) / 2, r1 + 20)), *(transform * (c1 + 40, r0 - 20)))]
    prompts = tmp_path / "prompts.gpkg"
    pyogrio.raw.write(str(prompts), np.array([to_wkb(b) for b in boxes], dtype=object), [np.array(["water", "water"], dtype=object)],
                      ["cls"], driver="GPKG", geometry_type="Polygon", crs=CRS)
    common = ["prelabel", path, "--prompts", prompts, "--class-field", "cls", "--backend", "classic", "--tile", "512", "--overlap", "0"]
    assert run(capsys, *common, "--out", tmp_path / "free.gpkg")[0] == 0
    code, _, err = run(capsys, *common, "--no-overlap", "--out", tmp_path / "shared.gpkg")
    assert code == 0, err
    free, shared = read_labels(str(tmp_path / "free.gpkg")), read_labels(str(tmp_path / "shared.gpkg"))
    assert free[0].geometry.intersection(free[1].geometry).area > 0  # the two objects overlap without the flag
    assert len(shared) == 2 and shared[0].geometry.intersection(shared[1].geometry).area == 0
    union = lambda labels: union_all([lab.geometry for lab in labels])
    assert union(shared).symmetric_difference(union(free)).area == 0
    best = max(free, key=lambda lab: lab.attributes["score"])
    assert any(lab.geometry.equals(best.geometry) for lab in shared)  # the higher score kept all of itself
    # segment --append --no-overlap: a new object is cut by the layer's labels
    x, y = transform * big.point
    code, _, err = run(capsys, "segment", path, "--point", f"{x},{y}", "--class", "water", "--backend", "classic",
                       "--tile", "512", "--out", tmp_path / "shared.gpkg", "--append", "--no-overlap")
    assert code == 0, err
    before, after = shared, read_labels(str(tmp_path / "shared.gpkg"))
    added = after[-1].geometry
    assert len(after) == 3 and all(added.intersection(lab.geometry).area == 0 for lab in before)
    code, _, err = run(capsys, "segment", path, "--point", f"{x},{y}", "--class", "water", "--backend", "classic",
                       "--tile", "512", "--out", tmp_path / "shared.gpkg", "--append", "--no-overlap")
    assert code == 2 and "entirely under existing labels" in err  # the same object again: nothing is left of it
    assert len(read_labels(str(tmp_path / "shared.gpkg"))) == 3
    code, _, err = run(capsys, "segment", path, "--point", f"{x},{y}", "--class", "water", "--backend", "classic",
                       "--out", tmp_path / "other.gpkg", "--snap", "1")
    assert code == 2 and "--snap works with --no-overlap" in err


def test_a_ragged_neighbour_on_the_grid_is_cut_by_its_pixels_alone():
    """A noisy mask accepted earlier (thousands of holes) is cut by its pixels, with no vector
    overlay; the result is exactly the new pixels it does not hold."""
    from seg_qgis_plugin.core.geo.shared_borders import on_grid, share_mask_borders

    noise = np.random.default_rng(0).random((256, 256)) > 0.45
    ragged = mask_to_geometry(noise, GRID)
    assert on_grid(ragged, GRID) and sum(len(p.interiors) for p in ragged.geoms) > 1000
    new_mask = region(40, 200, 60, 220, shape=(256, 256))
    cut = share_mask_borders(new_mask, GRID, [ragged])
    np.testing.assert_array_equal(burn([cut], (256, 256), GRID), new_mask & ~burn([ragged], (256, 256), GRID))
    assert not on_grid(box(GRID.c + 0.3, GRID.f - 10, GRID.c + 5, GRID.f - 2), GRID)
