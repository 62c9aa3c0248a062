"""The ``--out`` of the benchmarks that print a table: a new file, or ``--overwrite`` to replace
one; the table (markdown, then its note) printed and written there."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_out_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="also write the table here (a new file)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def check_out(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with the parser's one-line error when ``--out`` exists and ``--overwrite`` is not given."""
    if args.out and Path(args.out).exists() and not args.overwrite:
        parser.error(f"--out {args.out} exists; give another path, or --overwrite to replace it")


def emit_table(header: list[str], rows: list[list[str]], note: str, out: str | None) -> str:
    """Print the markdown table and its note, write them to ``out`` (when given); return the text."""
    from mrae.tables import markdown_table

    text = markdown_table(header, rows) + "\n\n" + note + "\n"
    print(text)
    if out:
        Path(out).write_text(text)
    return text
