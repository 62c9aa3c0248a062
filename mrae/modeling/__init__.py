"""The models: the ResNet trunk split into levels, the feature extractors, the backbone they make
(`build_backbone`), the hosts around it (Faster R-CNN, RetinaNet, FCOS: `build_detector`), and the
ONNX export and runtime."""
