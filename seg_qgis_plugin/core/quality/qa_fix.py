"""Repairs for what QA finds, written to a new layer; the input is never touched.

In this order: make every geometry valid (its polygonal part), drop empty geometries, keep the
first of each group of exact duplicates, resolve overlaps over the tolerance by the user's RULES
("score": the higher score wins, "earlier": the earlier `created` (then the lower fid) wins,
"merge": labels of one class that overlap become one, keeping the attributes of the best scored;
overlaps between classes are then resolved as "score"), and finally drop slivers, including those
the trimming made. Gaps, holes and area outliers need a person and are left alone.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import SettingError
from ..progress import Progress, check_canceled
from .qa import Finding, Tolerances, polygonal, sliver_measures
from .table import LabelTable, metric_frame

RULES = ("score", "earlier", "merge")


def fix_labels(table: LabelTable, findings: Sequence[Finding], tolerances: Tolerances = Tolerances(), rule: str = "score",
               class_field: Optional[str] = "class", score_field: str = "score",
               progress: Optional[Progress] = None) -> Tuple[LabelTable, Dict[str, int]]:
    """A repaired copy of `table` (geometries MultiPolygon-ready, same columns, fids of the kept
    labels) and what was done: counts of made_valid, dropped_empty, dropped_duplicate, trimmed,
    merged, dropped_sliver."""
    import shapely

    if rule not in RULES:
        raise SettingError(f"The overlap rule must be one of {', '.join(RULES)}, not {rule!r}.")
    position = {int(f): i for i, f in enumerate(table.fids)}
    geoms = table.geometries.copy()
    keep = np.ones(len(table), bool)
    done = {"made_valid": 0, "dropped_empty": 0, "dropped_duplicate": 0, "trimmed": 0, "merged": 0, "dropped_sliver": 0}
    for finding in findings:
        where = [position[f] for f in finding.fids]
        if finding.kind == "invalid":
            geoms[where[0]] = polygonal(shapely.make_valid(geoms[where[0]]))
            done["made_valid"] += 1
        elif finding.kind == "empty":
            keep[where[0]] = False
            done["dropped_empty"] += 1
        elif finding.kind == "duplicate":
            keep[where[1:]] = False
            done["dropped_duplicate"] += len(where) - 1
    check_canceled(progress)
    overlaps = [(position[f.fids[0]], position[f.fids[1]]) for f in findings if f.kind == "overlap"]
    overlaps = [(a, b) for a, b in overlaps if keep[a] and keep[b]]
    rank = _priority(table, rule, score_field)
    classes = table.column(class_field)
    if rule == "merge" and classes is not None:
        same = [(a, b) for a, b in overlaps if classes[a] == classes[b]]
        overlaps = [(a, b) for a, b in overlaps if classes[a] != classes[b]]
        for members in _components(same):
            head = min(members, key=lambda m: rank[m])
            geoms[head] = polygonal(shapely.union_all(geoms[members]))
            others = [m for m in members if m != head]
            keep[others] = False
            done["merged"] += len(others)
        overlaps = [(a, b) for a, b in overlaps if keep[a] and keep[b]]
    winners_of: Dict[int, List[int]] = {}
    for a, b in overlaps:
        winner, loser = (a, b) if rank[a] < rank[b] else (b, a)
        winners_of.setdefault(loser, []).append(winner)
    for loser in sorted(winners_of, key=lambda m: rank[m]):  # winners are trimmed before they cut others
        geoms[loser] = polygonal(shapely.difference(geoms[loser], shapely.union_all(geoms[winners_of[loser]])))
        done["trimmed"] += 1
    check_canceled(progress)
    empty = keep & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
    keep &= ~empty
    done["dropped_empty"] += int(empty.sum())
    kept = np.flatnonzero(keep)
    frame = metric_frame(geoms[kept], table.crs)
    compactness, thin = sliver_measures(frame.to_metric(geoms[kept]), tolerances)
    sliver = (compactness < tolerances.sliver_compactness) | thin
    done["dropped_sliver"] = int(sliver.sum())
    fixed = table.subset(kept[~sliver])
    fixed.geometries = geoms[kept[~sliver]]
    return fixed, done


def _priority(table: LabelTable, rule: str, score_field: str) -> np.ndarray:
    """Rank per label, 0 = wins every overlap."""
    n = len(table)
    created = table.column("created") or [None] * n
    earlier = sorted(range(n), key=lambda i: (created[i] is None, str(created[i] or ""), int(table.fids[i])))
    if rule == "earlier":
        order = earlier
    else:
        scores = table.column(score_field) or [None] * n
        at = {i: k for k, i in enumerate(earlier)}
        order = sorted(range(n), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), at[i]))
    rank = np.empty(n, np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(n)
    return rank


def _components(edges: Sequence[Tuple[int, int]]) -> List[List[int]]:
    """Connected groups of positions joined by `edges` (union-find)."""
    parent: Dict[int, int] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: Dict[int, List[int]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return [sorted(g) for _, g in sorted(groups.items())]
