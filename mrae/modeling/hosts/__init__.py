"""The detectors that host an extractor, each registered by name with its builder
``(backbone, settings) -> detector`` and its settings in :data:`mrae.modeling.registry.HOSTS`.
Each is a torchvision detector (``transform``, ``backbone``; list of images in, losses in
training, ``{"boxes", "labels", "scores"}`` per image in evaluation) with ignore regions in
training and the per-class and per-image caps."""
