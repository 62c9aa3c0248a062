"""The one markdown-table writer of the package (results pages, command output, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table_row(cells: Sequence[object]) -> str:
    """One markdown table row: ``| a | b | c |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def separator(columns: int, align: str = "") -> str:
    """The line under a header of ``columns`` columns; ``align`` gives one letter per column, ``r``
    for right-aligned (``--:``), anything else (or a missing letter) left (``---``)."""
    return "|" + "".join("--:|" if align[i:i + 1] == "r" else "---|" for i in range(columns))


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A whole markdown table: header, separator, one line per row (cells converted with ``str``)."""
    lines = [table_row(header), separator(len(header), align)]
    lines += [table_row(row) for row in rows]
    return "\n".join(lines)
