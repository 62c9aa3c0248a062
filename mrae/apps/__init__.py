"""The applications built on the library: evaluating a checkpoint, prediction, drawing, the demo
and the study. Their commands are in :mod:`mrae.commands`."""
