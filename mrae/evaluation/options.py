"""The options of an evaluation, parsed and checked without torch or pycocotools (a config's
``eval`` section is checked with them when it loads): the maxDets COCOeval counts, and the
``[FIELD:]REGEX`` that groups the images by condition (:mod:`mrae.evaluation.groups`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mrae.errors import ConfigError

#: COCO's maxDets (COCOeval's default): AR1, AR10, AR100, and every AP at 100 detections an image.
COCO_MAX_DETS: tuple[int, ...] = (1, 10, 100)
#: AI-TOD's maxDets (its evaluator's ``Params.setDetParams``): AP at 1500 detections an image.
AITOD_MAX_DETS: tuple[int, ...] = (1, 100, 1500)


def check_max_dets(values: Sequence[int], cap: int | None = None, what: str = "--max-dets",
                   raise_cap: str = "the model's detections_per_img") -> tuple[int, ...]:
    """``values`` as the maxDets of an evaluation: not empty, each >= 1, strictly increasing, and
    the largest at most ``cap`` (the model's detections per image: a larger maxDets would count
    detections the model never returns). Raises a one-line ConfigError naming ``what``;
    ``raise_cap`` says how to raise the cap ("{n}": the largest value)."""
    values = tuple(values)
    if not values:
        raise ConfigError(f"{what}: no value; give detections per image such as 1,10,100")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ConfigError(f"{what} {list(values)}: every value must be a whole number >= 1")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ConfigError(f"{what} {list(values)}: give the values in increasing order, each once "
                          "(AP is read at the last one)")
    if cap is not None and values[-1] > cap:
        raise ConfigError(
            f"{what} {list(values)}: {values[-1]} is over the model's cap of {cap} detections per "
            f"image; lower it, or raise the cap ({raise_cap.format(n=values[-1])})")
    return values


def parse_max_dets(text: str, what: str = "--max-dets") -> tuple[int, ...]:
    """``"100,300,1000"`` -> ``(100, 300, 1000)``; not yet checked (:func:`check_max_dets`)."""
    items = [item.strip() for item in str(text).split(",")]
    if items == [""]:
        raise ConfigError(f"{what}: no value; give detections per image such as 1,10,100")
    try:
        return tuple(int(item) for item in items)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: not a comma-separated list of whole numbers, "
                          "e.g. 100,300,1000") from None


_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


@dataclass(frozen=True)
class GroupBy:
    """A parsed ``[FIELD:]REGEX``: the image record field, and the regex (None: the whole value)."""

    text: str
    field: str
    pattern: re.Pattern[str] | None

    @property
    def names(self) -> tuple[str, ...]:
        """The groupings: the regex's named groups, or the field."""
        return tuple(self.pattern.groupindex) if self.pattern is not None else (self.field,)


def parse_group_by(text: str, what: str = "--group-by") -> GroupBy:
    """Parse ``[FIELD:]REGEX``; a one-line ConfigError when the regex does not compile or has no
    named group."""
    text = str(text)
    found = _FIELD.match(text)
    field, regex = (found.group(1), text[found.end():]) if found else ("file_name", text)
    if not regex:
        if not found:
            raise ConfigError(f"{what}: empty; give a regular expression with a named group such as "
                              "'^(?P<light>[01])_', or FIELD: for an image record field")
        return GroupBy(text, field, None)
    try:
        pattern = re.compile(regex)
    except re.error as error:
        raise ConfigError(f"{what} {regex!r}: not a regular expression ({error}); "
                          "fix it, e.g. '^(?P<light>[01])_'") from None
    if not pattern.groupindex:
        raise ConfigError(f"{what} {regex!r}: no named group to group by; name one, e.g. "
                          "'^(?P<light>[01])_'")
    return GroupBy(text, field, pattern)


