"""What a conversion counted along the way, and how it is told: :class:`Report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrae.data.formats.common import Found


@dataclass
class Report:
    """What :func:`convert` counted along the way."""

    labelled: int = 0  # images with a label file
    clipped: int = 0  # boxes extending outside their image, clipped to it
    dropped_empty: int = 0  # zero or negative width/height as written
    dropped_outside: int = 0  # nothing left inside the image after clipping
    dropped_others: int = 0  # VisDrone "others" under --visdrone-others drop
    dropped_classes: int = 0  # boxes of a class that --classes leaves out
    suspicious: list[str] = field(default_factory=list)  # boxes the --voc-boxes convention cannot have
    ignore_regions: int = 0  # ignore regions kept (one annotation each, or one per category)
    names_file: str | None = None
    size_mismatch: list[str] = field(default_factory=list)  # VOC <size> != the image file's
    orphans: list[str] = field(default_factory=list)  # label files without an image
    large: list[str] = field(default_factory=list)  # images above Pillow's pixel limit
    pixel_limit: int | None = None  # that limit (PIL.Image.MAX_IMAGE_PIXELS) when converted

    def add(self, found: Found) -> None:
        """Count what a reader found for one image."""
        self.dropped_others += found.dropped
        if found.size_mismatch is not None:
            self.size_mismatch.append(found.size_mismatch)
        if found.suspicious is not None:
            self.suspicious.append(found.suspicious)

    def summary(self, data: dict[str, Any]) -> str:
        """Lines for the terminal: images, objects, ignore regions, categories, boxes changed."""
        anns = data["annotations"]
        crowd = sum(1 for a in anns if a["iscrowd"])
        regions = f"{crowd:,} ignore regions"
        if crowd != self.ignore_regions:
            regions = (f"{self.ignore_regions:,} ignore regions ({crowd:,} annotations: those of "
                       "every class once per category)")
        lines = [
            f"{len(data['images']):,} images ({self.labelled:,} with a label file), "
            f"{len(anns) - crowd:,} objects, {regions}, {len(data['categories'])} categories"
            + (f" (names from {self.names_file})" if self.names_file else "")
        ]
        changed = []
        if self.clipped:
            changed.append(f"clipped {self.clipped:,} boxes to their image")
        if self.dropped_empty + self.dropped_outside:
            changed.append(
                f"dropped {self.dropped_empty + self.dropped_outside:,} degenerate boxes "
                f"({self.dropped_empty:,} with zero or negative size, "
                f"{self.dropped_outside:,} outside their image)"
            )
        if self.dropped_others:
            changed.append(f"dropped {self.dropped_others:,} VisDrone 'others' objects")
        if self.dropped_classes:
            changed.append(f"dropped {self.dropped_classes:,} boxes of classes left out by --classes")
        if changed:
            lines.append("; ".join(changed))
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """One line per kind of oddity that did not stop the conversion."""
        lines = []
        if self.orphans:
            lines.append(
                f"{len(self.orphans):,} label files have no image and were not used "
                f"(e.g. {self.orphans[0]}); check --images and --labels"
            )
        if self.large:
            lines.append(
                f"{len(self.large):,} images have more than Pillow's limit of "
                f"{self.pixel_limit:,} pixels (e.g. {self.large[0]}), which it refuses to decode "
                "as a decompression bomb; raise PIL.Image.MAX_IMAGE_PIXELS or cut them into tiles"
            )
        if self.suspicious:
            lines.append(
                f"{len(self.suspicious):,} VOC files have a box starting at 0 (e.g. "
                f"{self.suspicious[0]}), which 1-based pixel indices cannot have; if the labels are "
                "0-based corners, convert again with --voc-boxes corners (docs/hituav.md)"
            )
        if self.size_mismatch:
            lines.append(
                f"{len(self.size_mismatch):,} label files state another <size> than their image "
                f"file (e.g. {self.size_mismatch[0]}); the image files' sizes are used"
            )
        return lines
