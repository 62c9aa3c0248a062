"""The detectors that host an extractor: ``model.detector`` name -> its builder
``(backbone, layer4, settings) -> detector``. Each is a torchvision detector (``transform``,
``backbone``; list of images in, losses in training, ``{"boxes", "labels", "scores"}`` per image
in evaluation) with ignore regions in training and the per-class and per-image caps."""

from mrae.choices import DETECTOR_NAMES
from mrae.modeling.hosts.faster_rcnn import build_faster_rcnn
from mrae.modeling.hosts.fcos import build_fcos
from mrae.modeling.hosts.retinanet import build_retinanet
from mrae.modeling.hosts.settings import HostSettings

HOSTS = {
    "faster_rcnn": build_faster_rcnn,
    "retinanet": build_retinanet,
    "fcos": build_fcos,
}
assert tuple(HOSTS) == DETECTOR_NAMES  # the config checks names against mrae.choices

__all__ = ["HOSTS", "HostSettings", "build_faster_rcnn", "build_fcos", "build_retinanet"]
