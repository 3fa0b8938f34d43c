"""The dataset report of a training export: report.json and report.html (tables and a bar plot).

Counts per split: chips (augmented copies counted apart), objects and labelled pixels per class
(of the original chips, so augmentation does not inflate them), background pixels; the imbalance
ratio (labelled pixels of the most frequent class / of the rarest; null when a class has none);
chips skipped and why; warnings, e.g. a class missing from a split. The plot needs matplotlib; without
it the page has the tables only.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from typing import Dict, List, Optional

import numpy as np

from .training_samples import ChipSample, visible_objects

_SPLIT_ORDER = ("train", "val", "test", "all")


class DatasetReport:
    """Collects the counts while chips are written; `finish` writes the two files."""

    def __init__(self, categories: Dict[str, int]):
        self.categories = dict(sorted(categories.items(), key=lambda kv: kv[1]))
        self.chips: Dict[str, int] = {}
        self.augmented: Dict[str, int] = {}
        self.objects: Dict[str, Dict[str, int]] = {}
        self.pixels: Dict[str, np.ndarray] = {}
        self.skipped: Dict[str, int] = {}
        self.warnings: List[str] = []

    def add(self, sample: ChipSample) -> None:
        if sample.augmentation:
            self.augmented[sample.split] = self.augmented.get(sample.split, 0) + 1
            return
        self.chips[sample.split] = self.chips.get(sample.split, 0) + 1
        counts = self.objects.setdefault(sample.split, {})
        for _, obj in visible_objects(sample):
            counts[str(obj.code)] = counts.get(str(obj.code), 0) + 1
        histogram = np.bincount(sample.mask.ravel(), minlength=256).astype(np.int64)
        self.pixels[sample.split] = self.pixels.get(sample.split, 0) + histogram

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def to_dict(self, settings: Optional[dict] = None) -> dict:
        splits = [s for s in _SPLIT_ORDER if s in self.chips or s in (settings or {}).get("splits", ())]
        per_split = {}
        for split in splits:
            histogram = self.pixels.get(split, np.zeros(256, np.int64))
            classes = {name: {"code": code, "objects": self.objects.get(split, {}).get(str(code), 0),
                              "pixels": int(histogram[code])} for name, code in self.categories.items()}
            per_split[split] = {"chips": self.chips.get(split, 0), "augmented_chips": self.augmented.get(split, 0),
                                "background_pixels": int(histogram[0]), "classes": classes,
                                "imbalance_ratio": _imbalance([c["pixels"] for c in classes.values()])}
            if self.chips.get(split, 0):
                missing = [name for name, c in classes.items() if c["objects"] == 0]
                for name in missing:
                    self.warnings.append(f"The class {name!r} is missing from the {split} split.")
        totals = {name: sum(int(self.pixels.get(s, np.zeros(256, np.int64))[code]) for s in splits)
                  for name, code in self.categories.items()}
        return {"settings": settings or {}, "splits": per_split,
                "chips": sum(self.chips.values()), "augmented_chips": sum(self.augmented.values()),
                "class_pixels": totals, "imbalance_ratio": _imbalance(list(totals.values())),
                "skipped": dict(sorted(self.skipped.items())), "warnings": list(dict.fromkeys(self.warnings))}

    def finish(self, folder: str, settings: Optional[dict] = None) -> dict:
        """Write report.json and report.html into `folder`; returns the report."""
        report = self.to_dict(settings)
        with open(os.path.join(folder, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(folder, "report.html"), "w", encoding="utf-8") as f:
            f.write(report_html(report))
        return report


def _imbalance(pixels: List[int]) -> Optional[float]:
    if not pixels or min(pixels) == 0:
        return None
    return round(max(pixels) / min(pixels), 3)


def report_html(report: dict) -> str:
    """A small self-contained page: warnings, chips per split, a table and a plot of classes per split."""
    e = html.escape
    rows = []
    for split, part in report["splits"].items():
        for name, c in part["classes"].items():
            rows.append(f"<tr><td>{e(split)}</td><td>{e(name)}</td><td>{c['code']}</td><td>{c['objects']}</td>"
                        f"<td>{c['pixels']}</td></tr>")
    chips = "".join(f"<tr><td>{e(s)}</td><td>{p['chips']}</td><td>{p['augmented_chips']}</td>"
                    f"<td>{p['imbalance_ratio'] if p['imbalance_ratio'] is not None else '-'}</td></tr>"
                    for s, p in report["splits"].items())
    skipped = "".join(f"<li>{n} {e(why)}</li>" for why, n in report["skipped"].items()) or "<li>none</li>"
    warnings = "".join(f"<li>{e(w)}</li>" for w in report["warnings"])
    plot = _plot(report)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Seg training data report</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}.warn{color:#b00}</style></head><body>"
            "<h1>Training data report</h1>"
            + (f"<ul class='warn'>{warnings}</ul>" if warnings else "")
            + "<h2>Chips</h2><table><tr><th>split</th><th>chips</th><th>augmented</th><th>imbalance ratio</th></tr>"
            + chips + "</table>"
            + f"<p>Imbalance ratio over all splits: {report['imbalance_ratio'] if report['imbalance_ratio'] is not None else '-'}"
            " (labelled pixels of the most frequent class / the rarest).</p>"
            + f"<h2>Skipped chips</h2><ul>{skipped}</ul>"
            + "<h2>Classes</h2><table><tr><th>split</th><th>class</th><th>code</th><th>objects</th><th>pixels</th></tr>"
            + "".join(rows) + "</table>"
            + (f"<h2>Labelled pixels per class</h2><img alt='labelled pixels per class and split' src='data:image/png;base64,{plot}'>"
               if plot else "")
            + "</body></html>\n")


def _plot(report: dict) -> str:
    """Grouped bars of labelled pixels per class and split as base64 PNG ('' without matplotlib)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return ""
    splits = list(report["splits"])
    names = list(report["class_pixels"])
    if not splits or not names:
        return ""
    figure = Figure(figsize=(max(4.0, 0.8 * len(names) + 2), 3.2), dpi=96)
    axes = figure.add_subplot()
    width = 0.8 / len(splits)
    for k, split in enumerate(splits):
        values = [report["splits"][split]["classes"][n]["pixels"] for n in names]
        axes.bar(np.arange(len(names)) + k * width, values, width, label=split)
    axes.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right")
    axes.set_ylabel("labelled pixels")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
