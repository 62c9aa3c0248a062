"""The models: the ResNet trunk split into levels, the feature extractors, the box heads and
Faster R-CNN around them (`build_detector`)."""
