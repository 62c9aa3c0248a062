"""The study's blocks in the README, each between its two markers: the headline table and
verdicts written here, and any block another module writes (the comparison of two studies,
:mod:`mrae.apps.study.compare`) through :func:`replace_block`. Nothing outside the markers
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrae.apps.study.discussion import discuss
from mrae.apps.study.sections import conclusion
from mrae.apps.study.tables import headline_table, paper_rows
from mrae.files import write_text_atomic

README_BEGIN = "<!-- mrae study: headline table begin -->"
README_END = "<!-- mrae study: headline table end -->"


def readme_block(results: dict[str, Any], link: str) -> str:
    """The README's headline block, markers included."""
    return (
        f"{README_BEGIN}\n"
        f"Written by `{results['command']}` ({results['date'][:10]}); the full table, the plots, "
        f"the budget and the discussion are in [{link}]({link}).\n\n"
        f"{headline_table(paper_rows(results['rows']))}\n\n"
        f"{conclusion(results)}\n\n"
        + "".join(f"- {line}\n" for line in discuss(results["rows"], results.get("pending")))
        + README_END
    )


def update_readme(readme: Path, results: dict[str, Any], report: Path) -> bool:
    """Replace the README's block between the headline markers; False where there is none."""
    return replace_block(readme, report, README_BEGIN, README_END,
                         lambda link: readme_block(results, link))


def replace_block(readme: Path, report: Path, first: str, last: str,
                  block: Callable[[str], str | None]) -> bool:
    """Replace the README's text from marker `first` to marker `last` (both kept, as `block` writes
    them) by ``block(link)``, `link` the page's path relative to the README; False where the
    markers are missing or `block` gives None."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    begin, end = text.find(first), text.find(last)
    if begin < 0 or end < begin:
        return False
    try:
        link = str(report.resolve().relative_to(readme.resolve().parent))
    except ValueError:
        link = str(report)
    written = block(link)
    if written is None:
        return False
    write_text_atomic(readme, text[:begin] + written + text[end + len(last):])
    return True
