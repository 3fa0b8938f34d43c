"""The resume manifest: which blocks of tiles a run has finished, and their per-tile pieces.

Beside the output `out` lives a folder `out.seg-resume/` holding `manifest.json` (the run's
fingerprint and the finished blocks) and one `block-NNNNN.npz` per finished block of automatic pre-labeling (its pieces:
WKB geometry, tile, score, stability, mask crop; no pickle), or one `block-NNNNN.json` per block of
prompts (each prompt's label as WKB hex + attributes, or why it was skipped). Each block file is written whole
(fsync, os.replace) before the manifest names it, and the manifest itself is replaced atomically,
so a run killed at any moment (SIGKILL included) leaves a manifest that lists only complete blocks.
`--resume` reloads those blocks instead of recomputing them; the final merge then sees exactly the
pieces an uninterrupted run would, so the output is the same. The folder is removed once the output
is written. A manifest whose fingerprint (raster fingerprint, model id and checkpoint sha256, tile
grid, radiometry, thresholds, and for prompts a hash of the prompt layer) differs from this run's
is refused in one sentence that says what differs, never mixed in.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..batch.mask_merge import Piece
from ..engine.labels import Label
from ..errors import Canceled, OutputError, SegError
from ..geo.tiling import Tile
from ..outputs.atomic import reason, write_json_atomic

VERSION = 1


def run_fingerprint(segmenter, tiles, options: Dict[str, object]) -> Dict[str, object]:
    """What makes two runs the same run: raster, model, working grid, radiometry, the tiles and
    the options (thresholds, block size). JSON-able."""
    backend = segmenter.backend
    tile_list = hashlib.sha256(repr([(t.col, t.row, t.width, t.height, t.scale) for t in tiles]).encode()).hexdigest()[:16]
    return {"version": VERSION, "raster": segmenter.source.fingerprint(), "model": backend.model_id,
            "checkpoint_sha256": backend.checkpoint_sha256 or "", "radiometry": segmenter.radiometry.to_json(),
            "tiles": tile_list, "options": {k: options[k] for k in sorted(options)}}


def resume_folder(output: str) -> str:
    """Where the manifest of a run writing `output` lives (a database target: the working folder)."""
    if output.startswith(("postgresql://", "postgres://", "PG:")):
        return os.path.abspath(".seg-resume-" + hashlib.sha256(output.encode()).hexdigest()[:12])
    return os.path.abspath(output) + ".seg-resume"


class ResumeManifest:
    """Finished blocks of one run. resume=False starts over (an old folder is cleared);
    resume=True keeps the finished blocks of the same run and refuses another run's manifest."""

    def __init__(self, output: str, fingerprint: Dict[str, object], resume: bool = False):
        self.output = output
        self.folder = resume_folder(output)
        self.path = os.path.join(self.folder, "manifest.json")
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.resume = resume
        self.blocks: Dict[str, str] = {}
        if resume and os.path.exists(self.path):
            stored = _read_manifest(self.path)
            if stored["fingerprint"] != self.fingerprint:
                raise SegError(f"The resume manifest {self.path} belongs to a different run "
                               f"({_differences(stored.get('fingerprint'), self.fingerprint)}); run without --resume "
                               "to start over, or repeat the original command.")
            self.blocks = dict(stored["blocks"])
        elif os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        with self.writing():
            os.makedirs(self.folder, exist_ok=True)
            self._write()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A failed write (a full disk) is told as a failure to write the output; the manifest
        goes with it unless this run resumes and has finished blocks (see `abandon`)."""
        try:
            yield
        except (OSError, OutputError) as exc:
            cause = exc.__cause__ if isinstance(exc, OutputError) and exc.__cause__ is not None else exc
            kept = self.abandon(exc)
            then = "--resume continues from the finished blocks" if kept else "nothing was written"
            raise OutputError(f"Cannot write {self.output}: {reason(cause, self.folder)}; {then}.") from exc

    def abandon(self, exc: BaseException) -> bool:
        """The run failed with `exc`: keep the finished blocks for --resume only where that helps
        (the run was interrupted, or it resumed already), else remove the folder. Returns whether
        it was kept. A run killed outright keeps its manifest: a later --resume continues it."""
        interrupted = isinstance(exc, (KeyboardInterrupt, Canceled))
        if self.blocks and (interrupted or self.resume):
            return True
        self.finish()
        return False

    def done(self, block: int) -> bool:
        return str(block) in self.blocks

    def load(self, block: int) -> List[Piece]:
        return self.load_arrays(block, pieces_from_arrays)

    def save(self, block: int, pieces: List[Piece]) -> None:
        self.save_arrays(block, pieces_to_arrays(pieces))

    def load_arrays(self, block: int, decode: Callable):
        """decode(the block's npz arrays), for a block `done` says is finished."""
        path = os.path.join(self.folder, self.blocks[str(block)])
        try:
            with np.load(path, allow_pickle=False) as data:
                return decode(data)
        except (OSError, ValueError, KeyError) as exc:
            raise SegError(f"The resume block {path} is unreadable; run without --resume to start over.") from exc

    def save_arrays(self, block: int, arrays: Dict[str, np.ndarray]) -> None:
        """Store a finished block (plain arrays, no pickle) durably, then name it in the manifest."""
        with self.writing():
            name = f"block-{block:05d}.npz"
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, os.path.join(self.folder, name))
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
            self.blocks[str(block)] = name
            self._write()

    def save_outcomes(self, block: int, outcomes: List[Tuple[int, Optional[Label], str]]) -> None:
        """Store a finished block of prompt outcomes ((number, Label or None, skip reason), see
        prelabel.prompt_outcome) durably as JSON (geometry as WKB hex, attributes as they are),
        then name it in the manifest."""
        from ..geo.wkb import to_wkb

        crs_list: List[str] = []
        rows = []
        for number, label, skipped in outcomes:
            if label is None:
                rows.append({"number": number, "skipped": skipped})
                continue
            if label.crs not in crs_list:
                crs_list.append(label.crs)
            rows.append({"number": number, "wkb": to_wkb(label.geometry, hex=True), "crs": crs_list.index(label.crs),
                         "attributes": {k: _plain(v) for k, v in label.attributes.items()}})
        name = f"block-{block:05d}.json"
        with self.writing():
            write_json_atomic(os.path.join(self.folder, name), {"crs": crs_list, "outcomes": rows}, "resume block", indent=None)
            self.blocks[str(block)] = name
            self._write()

    def load_outcomes(self, block: int) -> List[Tuple[int, Optional[Label], str]]:
        from shapely import from_wkb

        path = os.path.join(self.folder, self.blocks[str(block)])
        try:
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)
            crs_list = stored["crs"]
            return [(row["number"], None, row["skipped"]) if "skipped" in row else
                    (row["number"], Label(from_wkb(row["wkb"]), crs_list[row["crs"]], row["attributes"]), "")
                    for row in stored["outcomes"]]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise SegError(f"The resume block {path} is unreadable; run without --resume to start over.") from exc

    def finish(self) -> None:
        """The output is whole: the manifest is no longer needed."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self) -> None:
        write_json_atomic(self.path, {"fingerprint": self.fingerprint, "blocks": self.blocks}, "resume manifest")


class ResumeGuard:
    """`with ResumeGuard() as guard: manifest = guard.keep(ResumeManifest(...))`: when the block
    fails, the manifest is abandoned (see ResumeManifest.abandon) before the error goes on."""

    def __init__(self):
        self.manifest: Optional[ResumeManifest] = None

    def keep(self, manifest: ResumeManifest) -> ResumeManifest:
        self.manifest = manifest
        return manifest

    def __enter__(self) -> "ResumeGuard":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and self.manifest is not None:
            self.manifest.abandon(exc)
        return False


_BLOCK_FILE = re.compile(r"^block-\d{5}\.(npz|json)$")


def _read_manifest(path: str) -> dict:
    """The stored manifest {"fingerprint": {...}, "blocks": {"<n>": "block-NNNNN.npz"}}; one
    sentence for a file that is not one (unreadable, not JSON, or JSON of another shape)."""
    unusable = f"The resume manifest {path} is unreadable or damaged; run without --resume to start over."
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError) as exc:
        raise SegError(unusable) from exc
    if not isinstance(stored, dict) or not isinstance(stored.get("fingerprint"), dict):
        raise SegError(unusable)
    blocks = stored.get("blocks", {})
    if not isinstance(blocks, dict) or not all(isinstance(k, str) and k.isdigit() and isinstance(v, str)
                                               and _BLOCK_FILE.match(v) for k, v in blocks.items()):
        raise SegError(unusable)
    return stored


def _plain(value):
    """numpy scalars as Python numbers (JSON); other values as they are."""
    return value.item() if isinstance(value, np.generic) else value


_WHAT = {"raster": "another raster", "model": "another model", "checkpoint_sha256": "another checkpoint",
         "radiometry": "other bands or stretch", "tiles": "another tile grid or area", "prompts": "another prompt layer"}


def _differences(stored, current: Dict[str, object]) -> str:
    """What differs between two fingerprints, in words ("another prompt layer, other options")."""
    if not isinstance(stored, dict):
        return "an older or unknown run"
    words = [_WHAT.get(key, "other options") for key in sorted(set(stored) | set(current), key=str)
             if stored.get(key) != current.get(key)]
    return ", ".join(dict.fromkeys(words)) or "other options"


def pieces_to_arrays(pieces: List[Piece]) -> Dict[str, np.ndarray]:
    """Pieces as plain arrays: meta float64 (n, 10) = tile col,row,width,height,scale, score,
    stability, origin col,row, has mask; geom_i uint8 WKB; mask_i bool (h, w)."""
    from ..geo.wkb import to_wkb

    arrays: Dict[str, np.ndarray] = {"meta": np.zeros((len(pieces), 10), np.float64)}
    for i, p in enumerate(pieces):
        t = p.tile
        arrays["meta"][i] = (t.col, t.row, t.width, t.height, t.scale, p.score, p.stability, p.origin[0], p.origin[1],
                             p.mask is not None)
        arrays[f"geom_{i}"] = np.frombuffer(to_wkb(p.geometry), np.uint8)
        if p.mask is not None:
            arrays[f"mask_{i}"] = p.mask
    return arrays


def pieces_from_arrays(data) -> List[Piece]:
    from shapely import from_wkb

    pieces = []
    for i, m in enumerate(data["meta"]):
        tile = Tile(int(m[0]), int(m[1]), int(m[2]), int(m[3]), int(m[4]))
        mask: Optional[np.ndarray] = data[f"mask_{i}"] if m[9] else None
        pieces.append(Piece(from_wkb(data[f"geom_{i}"].tobytes()), tile, float(m[5]), float(m[6]), mask,
                            (int(m[7]), int(m[8]))))
    return pieces
