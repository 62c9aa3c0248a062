"""The applications built on the library: evaluation and prediction commands, drawing, the demo
and the study."""
