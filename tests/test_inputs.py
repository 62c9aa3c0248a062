"""mrae.inputs: only regular files are read, up to a stated size; the CLI prints one bounded line."""

from __future__ import annotations

import os
import socket

import pytest

from mrae.cli import MAX_ERROR_CHARS, error_line
from mrae.errors import ConfigError, DataError
from mrae.inputs import check_regular, read_bytes, read_text, shorten


def test_regular_files_are_read_up_to_the_limit(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text(path, 100) == "hello"  # a BOM is not an error
    with pytest.raises(DataError, match="limit"):
        read_bytes(path, 4)
    with pytest.raises(ConfigError, match="not found"):
        check_regular(tmp_path / "nope", 10, error=ConfigError)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "socket"])
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "f"
        os.mkfifo(path)  # opening it for reading would block forever
    elif kind == "device":
        path = "/dev/zero"
    elif kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "s"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    with pytest.raises(DataError, match=kind if kind != "fifo" else "FIFO") as error:
        read_bytes(path, 1 << 20)
    assert "\n" not in str(error.value)


def test_a_loader_workers_error_is_its_original_line():
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\nmrae.errors.DataError: img.jpg: image id 3 is 10 x 10 px but '
        "a.json says 12 x 10\n")
    assert error_line(wrapped) == "img.jpg: image id 3 is 10 x 10 px but a.json says 12 x 10"
    assert len(error_line(DataError("x" * 10_000))) == MAX_ERROR_CHARS
    assert error_line(DataError("two\nlines")) == "two lines"
    assert shorten("a\n b " * 100, 20).endswith("...") and len(shorten("a " * 100, 20)) == 20
