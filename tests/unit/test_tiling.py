import math

import pytest
from affine import Affine

from seg_qgis_plugin.core.geo.tiling import Tile, TileGrid, scale_for_gsd


@pytest.mark.parametrize("n,t,o", [(2500, 1024, 256), (1024, 1024, 256), (700, 1024, 256), (5000, 512, 128), (1025, 1024, 0)])
def test_grid_covers_the_level_with_full_tiles_and_documented_count(n, t, o):
    grid = TileGrid(n, n // 2 + 1, t, o)
    rows, cols = grid.shape
    assert cols == 1 + math.ceil(max(n - t, 0) / (t - o))
    tiles = list(grid)
    assert len(tiles) == len(grid) == rows * cols
    covered = set()
    for tile in tiles:
        assert tile.width == min(t, n) and tile.col + tile.width <= n
        covered.update(range(tile.col, tile.col + tile.width))
    assert covered == set(range(n))


def test_every_point_lies_at_least_half_the_overlap_inside_its_best_tile():
    grid = TileGrid(3000, 2000, 512, 128)
    for x in range(0, 3000, 37):
        for y in range(0, 2000, 41):
            tile = grid.best_tile_for(x + 0.5, y + 0.5)
            margin_x = min(x + 0.5 - tile.col, tile.col + tile.width - x - 0.5)
            margin_y = min(y + 0.5 - tile.row, tile.row + tile.height - y - 0.5)
            assert tile.contains(x, y)
            # raster edges are edges of every tile there, so only inner edges count
            assert margin_x >= 64 or x < 64 or x > 3000 - 64
            assert margin_y >= 64 or y < 64 or y > 2000 - 64


def test_neighbours_and_levels():
    grid = TileGrid(2000, 2000, 512, 128, scale=2)
    assert (grid.width, grid.height) == (1000, 1000)
    first = grid.at(0, 0)
    right = grid.neighbour(first, 0, 1)
    assert right.col == 384 and right.scale == 2
    assert grid.neighbour(first, -1, 0) is None
    assert first.raster_window == (0, 0, 1024, 1024)


def test_tile_transform_is_exact_at_pixel_edges():
    raster = Affine(0.5, 0, 500000, 0, -0.5, 4650000)
    tile = Tile(col=10, row=20, width=100, height=100, scale=4)
    assert tile.transform(raster) * (0, 0) == (500000 + 10 * 4 * 0.5, 4650000 - 20 * 4 * 0.5)
    assert tile.transform(raster).a == 2.0


def test_scale_for_gsd():
    assert scale_for_gsd(0.5, None) == 1
    assert scale_for_gsd(0.5, 0.3) == 1
    assert scale_for_gsd(0.5, 2.0) == 4


def test_bad_grids_are_refused():
    with pytest.raises(ValueError):
        TileGrid(100, 100, 512, 512)
    with pytest.raises(ValueError):
        TileGrid(100, 100, 8, 0)
