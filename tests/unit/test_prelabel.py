import numpy as np
import pytest
from shapely.geometry import MultiPoint, Point, box

from seg_qgis_plugin.core.errors import Canceled, SegError
from seg_qgis_plugin.core.engine.labeling import open_segmenter
from seg_qgis_plugin.core.batch.mask_merge import Piece, merge_pieces
from seg_qgis_plugin.core.batch.point_grid import TileMask, decode_points, filter_masks, grid_points
from seg_qgis_plugin.core.batch.prelabel import PrelabelOptions, PromptFeature, prelabel_automatic, prelabel_from_prompts
from seg_qgis_plugin.core.geo.tiling import Tile, Tiling

X0, Y0, RES = 500000.0, 4650000.0, 0.5
CRS = "EPSG:32633"


def px_box(c0, r0, c1, r1):
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def px_point(c, r):
    return Point(X0 + c * RES, Y0 - r * RES)


@pytest.fixture
def bright_scene(raster_factory):
    """300 x 200 dark raster with three bright rectangles; B crosses the 128-pixel tile border."""
    data = np.full((1, 200, 300), 20, np.uint8)
    rects = {"A": (10, 10, 40, 30), "B": (100, 60, 170, 90), "C": (220, 150, 260, 190)}  # c0, r0, c1, r1
    for c0, r0, c1, r1 in rects.values():
        data[0, r0:r1, c0:c1] = 230
    return raster_factory(data), {k: px_box(*v) for k, v in rects.items()}


def test_points_become_whole_objects_with_class_and_tags(bright_scene, oracle):
    path, truth = bright_scene
    segmenter = open_segmenter(path, oracle("bright"), value_range=(0, 255), tiling=Tiling(128, 32))
    features = [
        PromptFeature(px_point(25.5, 20.5), CRS, "roof", {"season": "summer", "note": "x"}),
        PromptFeature(MultiPoint([(X0 + 101 * RES, Y0 - 61 * RES), (X0 + 160 * RES, Y0 - 80 * RES)]), CRS, "", {}),
        PromptFeature(Point(0, 0), CRS, "roof", {}),  # outside the raster
    ]
    result = prelabel_from_prompts(segmenter, features, PrelabelOptions(class_name="object"))
    assert [n for n, _ in result.skipped] == [3] and "outside" in result.skipped[0][1]
    by_class = {lab.attributes["class"]: lab for lab in result.labels}
    assert by_class["roof"].geometry.equals(truth["A"])
    assert by_class["object"].geometry.equals(truth["B"])  # crosses tiles, still whole
    roof = by_class["roof"].attributes
    assert roof["season"] == "summer" and '"note": "x"' in roof["tags"] and roof["status"] == "prelabel"
    assert roof["prompt_type"] == "point" and by_class["object"].attributes["prompt_count"] == 2


def test_polygons_become_box_prompts(bright_scene, oracle):
    path, _ = bright_scene
    segmenter = open_segmenter(path, oracle("box"), value_range=(0, 255), tiling=Tiling(128, 32))
    result = prelabel_from_prompts(segmenter, [PromptFeature(px_box(50, 20, 80, 60), CRS, "field", {})])
    (lab,) = result.labels
    assert lab.attributes["prompt_type"] == "box"
    assert lab.geometry.equals(px_box(50, 20, 80, 60))


def test_automatic_finds_each_object_once_and_merges_across_tiles(bright_scene, oracle):
    path, truth = bright_scene
    segmenter = open_segmenter(path, oracle("bright"), value_range=(0, 255), tiling=Tiling(128, 48))
    result = prelabel_automatic(segmenter, options=PrelabelOptions(points_per_side=24, min_score=0.5, min_stability=0.5))
    geometries = sorted((lab.geometry for lab in result.labels), key=lambda g: g.bounds[0])
    assert len(geometries) == 3
    for geometry, key in zip(geometries, "ABC"):
        assert geometry.equals(truth[key]), key
    b = next(lab for lab in result.labels if lab.geometry.equals(truth["B"]))
    assert b.attributes["prompt_count"] > 1 and b.attributes["prompt_type"] == "auto-grid"


def test_automatic_is_refused_by_the_classic_backend(bright_scene):
    from seg_qgis_plugin.core.models.classic import ClassicBackend

    path, _ = bright_scene
    segmenter = open_segmenter(path, ClassicBackend(), value_range=(0, 255), tiling=Tiling(128, 32))
    with pytest.raises(SegError, match="classic-grabcut backend cannot pre-label automatically"):
        prelabel_automatic(segmenter)


def test_automatic_can_be_canceled(bright_scene, oracle):
    path, _ = bright_scene

    class Cancel:
        def set_progress(self, p):
            pass

        def is_canceled(self):
            return True

    segmenter = open_segmenter(path, oracle("bright"), value_range=(0, 255), tiling=Tiling(128, 32))
    with pytest.raises(Canceled):
        prelabel_automatic(segmenter, progress=Cancel())


def test_grid_points_skip_nodata_and_nms_drops_duplicates():
    valid = np.ones((100, 100), bool)
    valid[:, :50] = False
    points = grid_points(100, 100, 4, valid)
    assert len(points) == 8 and (points[:, 0] >= 50).all()
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = a.copy()
    b[6, 2] = True
    kept = filter_masks([TileMask(a, 0.9, 0.95, (0, 0)), TileMask(b, 0.95, 0.95, (0, 0)), TileMask(~a, 0.2, 1, (0, 0))], 0.5, 0.5, 0.7)
    assert len(kept) == 1 and kept[0].mask.sum() == 17


def test_merge_needs_agreement_inside_the_shared_window():
    from affine import Affine

    from seg_qgis_plugin.core.geo.vectorize import mask_to_geometry

    level = Affine(1, 0, 0, 0, -1, 0)  # level pixel (c, r) -> map (c, -r)
    left, right = Tile(0, 0, 100, 100), Tile(60, 0, 100, 100)

    def piece(tile, c0, r0, c1, r1, score=0.9):
        mask = np.zeros((100, 100), bool)
        mask[r0 - tile.row:r1 - tile.row, c0 - tile.col:c1 - tile.col] = True
        return Piece.from_tile_mask(mask, tile, mask_to_geometry(mask, level * Affine.translation(tile.col, tile.row)), score, 0.9, True)

    cut_left = piece(left, 80, 40, 100, 50)     # the object cut by the left tile's edge
    whole_right = piece(right, 80, 40, 120, 50)  # the whole object, seen from the right tile
    other = piece(right, 62, 80, 70, 90)         # another object in the overlap
    half = piece(left, 61, 80, 66, 90)           # overlaps `other` by less than half: not merged
    merged = merge_pieces([cut_left, whole_right, other, half], level)
    assert len(merged) == 3
    big = max(merged, key=lambda m: m.geometry.area)
    assert big.geometry.equals(box(80, -50, 120, -40)) and len(big.pieces) == 2 and big.extent == Tile(0, 0, 160, 100)


def test_batched_sam_decoding_equals_one_point_at_a_time(tiny_checkpoint):
    from seg_qgis_plugin.core.models.backend import TilePrompt
    from seg_qgis_plugin.core.models.sam import SamBackend

    backend = SamBackend(tiny_checkpoint, "vit_tiny", "cpu", threads=2)
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3)).astype(np.uint8)
    embedding = backend.encode(image)
    points = grid_points(96, 128, 2)
    batched = decode_points(backend, embedding, points, batch=3)
    for (x, y), got in zip(points, batched):
        single = backend.decode(embedding, TilePrompt(points=np.array([[x, y]], np.float32), labels=np.ones(1, np.int32)), True)
        assert got.score == pytest.approx(single.score, abs=1e-4)
        assert np.count_nonzero(got.mask != single.mask) <= 0.001 * got.mask.size
