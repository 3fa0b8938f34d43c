"""Blocks of tiles on a dask.distributed cluster, one model per worker process.

`--cluster local:N` starts a LocalCluster of N single-threaded worker processes on this machine;
`--cluster tcp://HOST:PORT` uses a running scheduler (`dask scheduler`, then `dask worker
tcp://HOST:PORT` on each GPU machine; every worker needs Seg, the model file at the same path and
the raster readable at the same path). Workers receive a `ModelSpec` and a `RasterJob` (small,
picklable values), open the model and the raster once and keep them for the next blocks
(`_session`, keyed by both), so a model loads once per worker, not once per block.

Ctrl-C: local workers are started with SIGINT ignored, so the interrupt (which a terminal sends to
the whole process group) reaches only this process; run_blocks cancels the unfinished blocks and
open_client closes the cluster, whose worker processes exit (they also exit when this process is
killed). Inside QGIS the workers run the Python interpreter QGIS embeds (python_for_workers).

Cost: a block is one task, ~ a few ms of scheduler overhead (bench/bench_cluster.py measures it),
so blocks of a few tiles keep overhead far below one SAM encode (seconds on a CPU, ~0.1 s on a GPU).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import signal
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from ..errors import MissingDependency, SegError, SettingError

_SESSIONS: "OrderedDict[str, object]" = OrderedDict()
MAX_SESSIONS = 2


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


WORKERS_PER_CPU = 4  # workers wait on I/O and the scheduler at times, but past this they only contend
WORKER_MEMORY = 512 * 2 ** 20  # what one worker process needs at least (Python, GDAL, numpy, a small model)


def max_local_workers() -> int:
    """The most local worker processes this machine can hold: WORKERS_PER_CPU per CPU, and no
    more than its memory holds at WORKER_MEMORY each (at least 1)."""
    cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        memory = cpus * WORKERS_PER_CPU * WORKER_MEMORY
    return max(1, min(cpus * WORKERS_PER_CPU, memory // WORKER_MEMORY))


def parse_cluster(spec: str, option: str = "--cluster") -> Tuple[str, object]:
    """("local", N) for "local:N", ("tcp", "tcp://HOST:PORT") for a scheduler address. A local
    cluster larger than the machine can hold (max_local_workers) is refused in one sentence that
    names `option` (the CLI's flag, Processing's parameter)."""
    m = re.fullmatch(r"local:(\d+)", spec.strip())
    if m and int(m.group(1)) >= 1:
        most = max_local_workers()
        if int(m.group(1)) > most:
            raise SettingError(f"{option} local:{int(m.group(1))} asks for more worker processes than this machine can hold "
                               f"({os.cpu_count() or 1} CPUs; at most local:{most}); use a smaller N or a scheduler (tcp://HOST:PORT).")
        return "local", int(m.group(1))
    if re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d+", spec.strip()):
        return "tcp", spec.strip()
    raise SettingError(f"{option} takes local:N (N worker processes) or tcp://HOST:PORT (a Dask scheduler), not {spec!r}.")


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
            python_for_workers()
            with _workers_ignore_sigint():
                cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
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


def python_for_workers() -> str:
    """The interpreter local workers are started with (multiprocessing's spawn executable). Inside
    QGIS, sys.executable is the QGIS program (qgis-bin.exe on Windows), which would open QGIS once
    per worker: then the Python interpreter QGIS embeds is chosen instead. Raises SegError when there
    is none."""
    import multiprocessing
    import multiprocessing.spawn

    current = os.fsdecode(multiprocessing.spawn.get_executable() or "")
    if os.path.basename(current).lower().startswith("python"):
        return current
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.join(sys.exec_prefix, "python.exe"), os.path.join(sys.exec_prefix, "bin", f"python{version}"),
                      os.path.join(sys.exec_prefix, "bin", "python3")):
        if os.path.isfile(candidate):
            multiprocessing.set_executable(candidate)
            return candidate
    raise SegError(f"local:N cannot start Python worker processes from {current or 'this program'}; start a scheduler "
                   "and workers with `dask scheduler` / `dask worker` and give its tcp://HOST:PORT address.")


@contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """SIGINT ignored while worker processes are started, so they inherit that: a Ctrl-C (which a
    terminal sends to the whole process group) reaches only this process, which cancels the blocks
    and closes the cluster, instead of every worker printing its own KeyboardInterrupt traceback.
    Only the main thread may touch signals (a QGIS task thread leaves them as they are). A Ctrl-C
    in the seconds the workers take to start is ignored; the next one cancels."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _session(job, model: ModelSpec, cache_dir: Optional[str], float16: bool = False):
    """This worker's Segmenter for (job, model, cache), opened on first use. A worker keeps the
    last MAX_SESSIONS (a scheduler's workers outlive runs); older ones are closed."""
    key = hashlib.sha256(pickle.dumps((job, model, cache_dir, float16))).hexdigest()
    if key in _SESSIONS:
        _SESSIONS.move_to_end(key)
    else:
        while len(_SESSIONS) >= MAX_SESSIONS:
            _SESSIONS.popitem(last=False)[1].close()
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


def block_prompt_outcomes(job, model: ModelSpec, cache_dir: Optional[str], options: Dict[str, object], items: List) -> List:
    """Runs on a worker: (number, Label or None, skip reason) for each (number, feature, prompt) of
    one block, in order (prelabel.prompt_outcome)."""
    from ..batch.prelabel import prompt_outcome

    segmenter = _session(job, model, cache_dir)
    return [prompt_outcome(segmenter, item, **options) for item in items]


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
