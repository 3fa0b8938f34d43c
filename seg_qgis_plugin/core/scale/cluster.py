"""Blocks of tiles on a dask.distributed cluster, one model per worker process.

`--cluster local:N` starts a LocalCluster of N single-threaded worker processes on this machine;
`--cluster tcp://HOST:PORT` uses a running scheduler (`dask scheduler`, then `dask worker
tcp://HOST:PORT` on each GPU machine; every worker needs Seg, the model file at the same path and
the raster readable at the same path). Workers receive a `ModelSpec` and a `RasterJob` (small,
picklable values), open the model and the raster once and keep them for the next blocks
(`_session`, keyed by both), so a model loads once per worker, not once per block.

Cost: a block is one task, ~ a few ms of scheduler overhead (bench/bench_cluster.py measures it),
so blocks of a few tiles keep overhead far below one SAM encode (seconds on a CPU, ~0.1 s on a GPU).
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from ..errors import MissingDependency, SegError, SettingError

_SESSIONS: Dict[Tuple, object] = {}


@dataclass(frozen=True)
class ModelSpec:
    """How a worker opens the model (labeling.open_backend's arguments); checkpoint: an absolute
    path valid on the workers. `factory`: instead, a zero-argument callable returning a backend
    (tests, custom backends), stored cloudpickled (`ModelSpec.from_factory`) so that it reaches
    workers even when its module is registered by value."""

    checkpoint: Optional[str] = None
    model_type: Optional[str] = None
    backend: str = "auto"
    device: str = "auto"
    threads: Optional[int] = None
    precision: str = "auto"
    factory: Optional[bytes] = None

    @classmethod
    def from_factory(cls, factory) -> "ModelSpec":
        import cloudpickle

        return cls(factory=cloudpickle.dumps(factory))

    def open(self):
        if self.factory is not None:
            import cloudpickle

            return cloudpickle.loads(self.factory)()
        from ..engine.labeling import open_backend

        return open_backend(self.checkpoint, self.model_type, self.backend, self.device, self.threads, self.precision)


def parse_cluster(spec: str) -> Tuple[str, object]:
    """("local", N) for "local:N", ("tcp", "tcp://HOST:PORT") for a scheduler address."""
    m = re.fullmatch(r"local:(\d+)", spec.strip())
    if m and int(m.group(1)) >= 1:
        return "local", int(m.group(1))
    if re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d+", spec.strip()):
        return "tcp", spec.strip()
    raise SettingError(f"--cluster takes local:N (N worker processes) or tcp://HOST:PORT (a Dask scheduler), not {spec!r}.")


@contextmanager
def open_client(spec: str) -> Iterator[object]:
    """A dask.distributed Client for `spec` (see parse_cluster), closed (with its LocalCluster)
    on exit. Raises SegError in one sentence when dask is missing or no scheduler answers."""
    kind, value = parse_cluster(spec)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise MissingDependency("--cluster needs dask.distributed; `pip install dask==2024.8.0 distributed==2024.8.0`.") from exc
    cluster = None
    try:
        if kind == "local":
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(value, timeout=10)
            except (OSError, TimeoutError) as exc:
                raise SegError(f"No Dask scheduler answers at {value}; start one with `dask scheduler` or check the address.") from exc
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _session(job, model: ModelSpec, cache_dir: Optional[str], float16: bool = False):
    """This worker's Segmenter for (job, model, cache), opened on first use."""
    key = (repr(job), repr(model), cache_dir, float16)
    if key not in _SESSIONS:
        _SESSIONS[key] = job.open(model.open(), cache_dir, float16)
    return _SESSIONS[key]


def block_pieces(job, model: ModelSpec, cache_dir: Optional[str], options: Dict[str, float], tiles: List) -> List:
    """Runs on a worker: the pieces of every tile of one block, in tile order (prelabel.tile_pieces)."""
    from ..batch.prelabel import tile_pieces

    segmenter = _session(job, model, cache_dir)
    pieces: List = []
    for tile in tiles:
        pieces.extend(tile_pieces(segmenter, tile, **options))
    return pieces


def block_encode(job, model: ModelSpec, cache_dir: str, skip_nodata: bool, float16: bool, tiles: List) -> Dict[str, int]:
    """Runs on a worker: encode one block of tiles into the shared cache folder; returns counts."""
    segmenter = _session(job, model, cache_dir, float16)
    return segmenter.encode(tiles, skip_nodata)


def run_blocks(client, fn, blocks: Dict[int, List], args: Tuple, on_done, progress=None) -> None:
    """Submit fn(*args, tiles) per block and call on_done(block, result) as blocks finish, in completion order. Cancellation (the host's, or
    Ctrl-C) cancels the blocks not yet finished and re-raises."""
    from distributed import as_completed

    from ..progress import check_canceled

    futures = {client.submit(fn, *args, tiles, pure=False): block for block, tiles in blocks.items()}
    try:
        for future in as_completed(list(futures)):
            check_canceled(progress)
            on_done(futures[future], future.result())
    except BaseException:
        client.cancel(list(futures))
        raise
