"""Pascal VOC segmentation layout for training chips.

    JPEGImages/<stem>.jpg              8-bit RGB chip (the band mapping and stretch SAM sees)
    SegmentationClass/<stem>.png       palette PNG, value = class code (0 background), VOC palette
    SegmentationObject/<stem>.png      palette PNG, value k = the k-th <object> of the XML (0 background)
    Annotations/<stem>.xml             size, segmented=1 and one <object> per instance: class name,
                                       truncated (cut by the chip edge), difficult=0 and <bndbox>
    ImageSets/Segmentation/<split>.txt chip stems per split (train, val, test; trainval = train + val;
                                       without --split every chip is in trainval)

Boxes are VOC's 1-based inclusive pixel boxes of the object's pixels in SegmentationObject (pixel
centre inside the label; a later label wins where labels overlap), so a box and its object mask
agree to the pixel; an object hidden entirely by later ones gets no <object>. Value 255 is VOC's
'void' and is never written, so class code 255 cannot be used here.
"""
from __future__ import annotations

import os
from typing import Dict, List
from xml.etree import ElementTree as ET

import numpy as np

from ..errors import OutputError, SettingError
from .training_samples import ChipSample, write_chip_image


def voc_palette() -> List[int]:
    """The 256-colour VOC palette as a flat [r, g, b, ...] list: the bits of the index are spread,
    three at a time, over the high bits of red, green and blue (1 -> dark red, 2 -> dark green, ...)."""
    palette = []
    for index in range(256):
        rgb, value = [0, 0, 0], index
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        palette.extend(rgb)
    return palette


def palette_png(values: np.ndarray, palette: List[int]) -> bytes:
    """uint8 (h, w) indices and a flat RGB palette -> the bytes of an 8-bit palette PNG (colour type
    3), written here so no imaging library is needed: signature, IHDR, PLTE, IDAT (zlib of rows with
    filter 0), IEND, each chunk with its CRC-32."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    values = np.ascontiguousarray(values, dtype=np.uint8)
    h, w = values.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), values], axis=1).tobytes()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", bytes(palette[:768])) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


class VocWriter:
    """Writes chips into `folder` in the VOC layout as they come, the image sets at `finish`."""

    def __init__(self, folder: str, categories: Dict[str, int]):
        if max(categories.values(), default=0) >= 255:
            raise SettingError("Pascal VOC keeps the value 255 for 'void'; class codes must be 1..254 for --format voc.")
        self.folder = folder
        self.names = {code: name for name, code in categories.items()}
        self.sets: Dict[str, List[str]] = {}
        self.palette = voc_palette()
        for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "ImageSets/Segmentation"):
            os.makedirs(os.path.join(folder, sub))

    def add(self, sample: ChipSample) -> int:
        """Write the chip; returns the number of objects it got."""
        write_chip_image(os.path.join(self.folder, "JPEGImages", f"{sample.stem}.jpg"), sample, None)
        ids = [k for k in np.unique(sample.instances) if k > 0]
        if len(ids) > 254:
            raise OutputError(f"The chip {sample.stem} holds {len(ids)} objects, more than a VOC object mask can number "
                              f"(254); use smaller tiles.")
        renumber = np.zeros(len(sample.objects) + 1, np.uint8)
        renumber[ids] = np.arange(1, len(ids) + 1)
        objects = renumber[sample.instances]
        self._png(f"SegmentationClass/{sample.stem}.png", sample.mask)
        self._png(f"SegmentationObject/{sample.stem}.png", objects)
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "JPEGImages"
        ET.SubElement(root, "filename").text = f"{sample.stem}.jpg"
        ET.SubElement(ET.SubElement(root, "source"), "database").text = "Seg"
        size = ET.SubElement(root, "size")
        for tag, value in (("width", sample.width), ("height", sample.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        ET.SubElement(root, "segmented").text = "1"
        for number, k in enumerate(ids, start=1):
            obj = sample.objects[k - 1]
            rows, cols = np.nonzero(objects == number)
            node = ET.SubElement(root, "object")
            ET.SubElement(node, "name").text = self.names.get(obj.code, str(obj.code))
            ET.SubElement(node, "pose").text = "Unspecified"
            ET.SubElement(node, "truncated").text = str(int(obj.truncated))
            ET.SubElement(node, "difficult").text = "0"
            box = ET.SubElement(node, "bndbox")
            for tag, value in (("xmin", cols.min()), ("ymin", rows.min()), ("xmax", cols.max()), ("ymax", rows.max())):
                ET.SubElement(box, tag).text = str(int(value) + 1)
        ET.indent(root)
        ET.ElementTree(root).write(os.path.join(self.folder, "Annotations", f"{sample.stem}.xml"), encoding="utf-8")
        self.sets.setdefault(sample.split, []).append(sample.stem)
        return len(ids)

    def _png(self, name: str, values: np.ndarray) -> None:
        try:
            with open(os.path.join(self.folder, name), "wb") as f:
                f.write(palette_png(values, self.palette))
        except OSError as exc:
            raise OutputError(f"Cannot write {name}: {exc}.") from exc

    def finish(self, splits: List[str]) -> str:
        """Write ImageSets/Segmentation/*.txt; returns that folder."""
        sets = {name: stems for name, stems in self.sets.items() if name != "all"}
        if "all" in self.sets or ("train" in sets and "val" in sets):
            sets["trainval"] = self.sets.get("all", []) + sets.get("train", []) + sets.get("val", [])
        for name in splits:
            sets.setdefault(name if name != "all" else "trainval", [])
        folder = os.path.join(self.folder, "ImageSets", "Segmentation")
        for name, stems in sets.items():
            with open(os.path.join(folder, f"{name}.txt"), "w") as f:
                f.write("".join(f"{s}\n" for s in stems))
        return folder
