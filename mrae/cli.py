"""The `mrae` command: one subcommand per job, each a thin module of :mod:`mrae.commands`.

Every command module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Only the module
of the command being run is imported, so ``mrae subset`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from mrae.errors import MraeError

# command name -> (module that implements it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mrae.commands.synth", "write the synthetic small-object dataset (COCO format)"),
    "subset": ("mrae.commands.subset", "write the paper's COCO small-object subset"),
    "convert": ("mrae.commands.convert", "YOLO, VisDrone, DOTA or Pascal VOC labels to a COCO JSON"),
    "anchors": ("mrae.commands.anchors", "cluster the training boxes into 4 scales x 3 aspect ratios"),
    "stats": ("mrae.commands.stats", "count objects per class and size; plot width against height"),
    "pretrain": ("mrae.commands.pretrain", "pretrain the ResNet trunk offline on synthetic crops or a dataset's own boxes"),
    "train": ("mrae.commands.train", "train a detector from a YAML config"),
    "eval": ("mrae.commands.eval", "COCO evaluation of a checkpoint (the paper's Table 2 columns)"),
    "predict": ("mrae.commands.predict", "detect objects in images and draw them"),
    "export": ("mrae.commands.export", "a checkpoint to ONNX (the whole detector, any image size)"),
    "demo": ("mrae.commands.demo", "synthetic data, train MRAE template 2, evaluate, draw"),
    "study": ("mrae.commands.study", "reproduce the paper's Tables 2 and 3 from a study file (the synthetic benchmark, HIT-UAV, your data)"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
    return argparse.ArgumentParser(
        prog="mrae",
        description="MultiResolution Attention Extractor for small-object detection.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun `mrae COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


#: The longest error line printed (a message never echoes a whole file or value).
MAX_ERROR_CHARS = 600


def error_line(error: BaseException) -> str:
    """The one line to print for ``error``: its message, or, for an error that a DataLoader
    worker re-raised ("Caught DataError in DataLoader worker process 0. Original Traceback
    ..."), the original message alone; cut to :data:`MAX_ERROR_CHARS`."""
    text = str(error)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        kind, _, message = last.partition(": ")
        text = message if message and "Error" in kind else last
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _run_by_a_worker_importing_the_script() -> bool:
    """True when the caller is the top level of a script that a spawned worker process is importing
    (multiprocessing runs the main script again as ``__mp_main__`` in each worker it spawns, as the
    study's runs and the DataLoader's workers are): without an ``if __name__ == "__main__":``
    guard the command would start again in every worker."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _run_by_a_worker_importing_the_script():
        print(f"mrae {' '.join(argv[:1])}: error: called at the top level of a script that a worker "
              "process imports; put the call under `if __name__ == \"__main__\":` (multiprocessing "
              "runs the script again in each worker)", file=sys.stderr)
        return 2
    if not argv or argv[0] not in COMMANDS:
        parser = _top_level_parser()
        parser.add_argument("command", choices=sorted(COMMANDS), help="what to do")
        parser.parse_args(argv[:1])  # prints help or "invalid choice" and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"mrae {name}", description=text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    # SIGTERM (`kill PID`) stops a command as Ctrl-C does: a training run says how to resume, a
    # study stops its runs, and the exit code is 130 either way.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None
    try:
        return int(module.main(args) or 0)
    except MraeError as error:
        print(f"mrae {name}: error: {error_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a full or read-only disk met where no command expected it
        where = f"{error.filename}: " if error.filename else ""
        print(f"mrae {name}: error: {where}{error.strerror or error_line(error)}; check the disk "
              "space and permissions, then run the command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # a command may say what happens next
        print(f"mrae {name}: interrupted" + (f"; {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
