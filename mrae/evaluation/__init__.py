"""Running a model over images (whole or sliced into tiles) and scoring it with the COCO metric."""
