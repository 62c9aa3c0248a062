"""Atomic writes for the study's marker and results files (the helpers of :mod:`mrae.files`)."""

from __future__ import annotations

from mrae.files import write_json_atomic, write_text_atomic

__all__ = ["write_json_atomic", "write_text_atomic"]
