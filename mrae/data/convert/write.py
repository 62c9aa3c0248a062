"""A converted COCO dict written to its file, checked first as the rest of the project reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrae.data.validate import check_coco
from mrae.errors import DataError
from mrae.files import write_text_atomic


def write_coco(data: dict[str, Any], out: str | Path) -> None:
    """Check ``data`` as the rest of the project will read it (:func:`mrae.data.validate.check_coco`)
    and write it as compact JSON (ASCII, so any locale writes it), atomically."""
    out = Path(out)
    check_coco(data, str(out), fix_boxes=False)
    try:
        write_text_atomic(out, json.dumps(data, separators=(",", ":")))
    except OSError as error:
        raise DataError(f"{out}: cannot write the file ({error.strerror})") from None
