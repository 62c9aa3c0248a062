"""Pascal VOC XML labels: ``<object>`` with ``<name>``, ``<bndbox>`` and ``<difficult>``.

Two conventions for ``<bndbox>`` (``--voc-boxes``, :data:`VOC_BOXES`):

- ``pixels`` (default): Pascal VOC's own, 1-based inclusive pixel indices, become ``[xmin - 1,
  ymin - 1, xmax - xmin + 1, ymax - ymin + 1]`` (detectron2's and supervision's convention);
  a box starting at 0 cannot be written so and is reported (:attr:`Found.suspicious`);
- ``corners``: 0-based pixel-edge coordinates, the box's corners: ``[xmin, ymin, xmax - xmin,
  ymax - ymin]``. HIT-UAV's labels are written so (measured against its images: docs/hituav.md).

``difficult`` objects keep a ``"difficult": 1`` key. The file's ``<size>`` is never trusted, only compared with the image's.
Class names come from ``--names`` or, sorted, from the files. Errors name the XML line (the
standard library's ElementTree keeps no line numbers, so the file is parsed with expat). The parser
expands no entity: a file that declares one (the billion-laughs bomb) or refers to an external one
is refused in one line, as defusedxml would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from mrae.data.formats.common import Found, Label, ReadOptions, parse_number
from mrae.errors import DataError
from mrae.inputs import LABEL_LIMIT, read_bytes, shorten

#: ``--voc-boxes``: 1-based inclusive pixel indices (Pascal VOC's), or 0-based corners.
VOC_BOXES = ("pixels", "corners")


def read_voc(path: Path, image: dict[str, Any], options: ReadOptions) -> Found:
    """The boxes of a VOC XML file of ``image`` in the ``options.voc_boxes`` convention, a line
    saying how its ``<size>`` differs from the image's (None when it agrees or is absent) and
    where a box starts at 0 under ``pixels`` (None when none does)."""
    width, height = image["width"], image["height"]
    pixels = options.voc_boxes == "pixels"
    suspicious = None
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise DataError(f"{path} line {root.line}: the root element is <{root.tag}>, not "
                        "<annotation>; give Pascal VOC XML")
    mismatch = None
    size = root.child("size")
    if size is not None:
        stated = (size.text_of("width"), size.text_of("height"))
        if stated != (str(width), str(height)):
            mismatch = f"{path} says {stated[0]} x {stated[1]}, the image is {width} x {height}"
    found = []
    for obj in root.children("object"):
        where = f"{path} line {obj.line}"
        name = obj.text_of("name")
        if not name:
            raise DataError(f"{where}: <object> has no <name>")
        box = obj.child("bndbox")
        if box is None:
            raise DataError(f"{where}: <object> {name!r} has no <bndbox>")
        xmin, ymin, xmax, ymax = (
            parse_number(box.text_of(k) or "", f"{path} line {box.line}", f"<{k}>")
            for k in ("xmin", "ymin", "xmax", "ymax")
        )
        difficult_text = obj.text_of("difficult") or "0"
        difficult = parse_number(difficult_text, where, "<difficult>")
        if pixels and min(xmin, ymin) < 1 and suspicious is None:
            suspicious = f"{path} line {box.line}"
        offset = 1 if pixels else 0
        found.append(Label(name, (xmin - offset, ymin - offset, xmax, ymax), where,
                           extra={"difficult": int(difficult != 0)}))
    return Found(found, size_mismatch=mismatch, suspicious=suspicious)


@dataclass
class _Node:
    """An XML element with the line it starts on (ElementTree keeps no line numbers)."""

    tag: str
    line: int
    text: str = ""
    kids: list[_Node] = field(default_factory=list)

    def child(self, tag: str) -> _Node | None:
        return next((k for k in self.kids if k.tag == tag), None)

    def children(self, tag: str) -> Iterator[_Node]:
        return (k for k in self.kids if k.tag == tag)

    def text_of(self, tag: str) -> str | None:
        node = self.child(tag)
        return None if node is None else node.text.strip()


def _parse_xml(path: Path) -> _Node:
    parser = expat.ParserCreate()
    stack: list[_Node] = []
    roots: list[_Node] = []

    def start(tag: str, _attrs: dict[str, str]) -> None:
        node = _Node(tag, parser.CurrentLineNumber)
        (stack[-1].kids if stack else roots).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def entity(name: str, *_args: object) -> None:  # billion laughs, external entities: refused
        raise DataError(f"{path} line {parser.CurrentLineNumber}: declares the XML entity "
                        f"{shorten(name, 40)!r}; entities are refused (a VOC file needs none)")

    def external(*_args: object) -> int:
        raise DataError(f"{path} line {parser.CurrentLineNumber}: refers to an external XML "
                        "entity; refused (a VOC file needs none)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    data = read_bytes(path, LABEL_LIMIT, what="VOC XML file")
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise DataError(f"{path} line {error.lineno}: malformed XML "
                        f"({expat.ErrorString(error.code)})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None
    return roots[0]
