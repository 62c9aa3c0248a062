"""Readers of the label formats that `mrae convert` (:mod:`mrae.data.convert`) turns into COCO JSON.

One module per format, each a reader from one label file to a list of
:class:`~mrae.data.formats.common.Label` (category, box in pixels, ignore flag, extra keys):

- :mod:`~mrae.data.formats.yolo`: YOLO txt (normalised ``class cx cy w h`` or segments);
- :mod:`~mrae.data.formats.visdrone`: VisDrone-DET (ignored regions, "others");
- :mod:`~mrae.data.formats.dota`: DOTA (polygons, difficult flags, imagesource/gsd);
- :mod:`~mrae.data.formats.voc`: Pascal VOC XML;
- :mod:`~mrae.data.formats.common`: the label, class-names files, text and number parsing.
"""
