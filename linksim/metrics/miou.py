"""``miou``: semantic consistency — a segmenter on the reconstruction vs the sent label map.

GESCO is scored by segmenting the generated image and comparing with the label map that was sent
(the paper: DRN-D-105 on Cityscapes). Here the segmenter is the embedded one trained on the
procedural scenes (:mod:`linksim.codecs.gesco.segmenter`, known weight ``segmenter_scenes``), or a
user's file named by ``$LINKSIM_SEGMENTER`` (a ``.safetensors`` written by ``linksim train
segmenter``, its ``.json`` beside it). Any image method gets the metric when the data has labels
(``data.source: scenes | cityscapes | coco_stuff``); without labels its cells are NaN.

Per image: ``IoU_c = |pred=c ∧ ref=c| / |pred=c ∨ ref=c|`` over the classes present in the
reference or the prediction (reference pixels ``>= K``, e.g. 255, are ignored); the main column is
their mean, the extra columns ``iou_<class>`` the per-class values (empty when the class is in
neither map).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor  # noqa: F401

from linksim.codecs.gesco.scenes import CLASSES
from linksim.codecs.gesco.segmenter import per_image_iou
from linksim.metrics.base import PerImageMetric, _check_pair

__all__ = ["MIoU", "miou_factory", "per_image_iou", "MIOU_COLUMNS"]

#: per-class columns of results.csv (the embedded segmenter's classes)
MIOU_COLUMNS = tuple(f"iou_{c}" for c in CLASSES)


class MIoU(PerImageMetric):
    """Per-image mIoU of ``segmenter(x_hat)`` against the sent labels.

    :param segmenter: a :class:`~linksim.codecs.gesco.segmenter.Segmenter`; :param source: its file
    :input x, y: ``[B, 3, H, W]``; :input side: ``{"labels": [B, H, W]}``
    :output: ``([B] mIoU, {iou_<class>: [B] list})``
    """

    name = "miou"
    uses_side = True
    extra_columns = MIOU_COLUMNS

    def __init__(self, segmenter, source: str, device="cpu"):
        super().__init__(device)
        self.segmenter = segmenter.to(self.device).eval()
        self.num_classes = segmenter.config.num_classes
        self.source = f"linksim segmenter ({self.num_classes} classes), {source}"

    @torch.no_grad()
    def __call__(self, x: Tensor, y: Tensor, side: dict | None = None):
        _check_pair(x, y)
        labels = (side or {}).get("labels")
        b = x.shape[0]
        if labels is None:
            nan = [float("nan")] * b
            return torch.full((b,), float("nan")), {c: nan for c in self.extra_columns}
        pred = self.segmenter.predict(y.to(self.device, torch.float32))
        iou = per_image_iou(pred, labels.to(self.device).long(), self.num_classes).cpu()
        mean = torch.nanmean(iou, dim=1).float()
        cols = {c: [None if v != v else float(v) for v in iou[:, i].tolist()] if i < iou.shape[1] else [None] * b
                for i, c in enumerate(self.extra_columns)}
        return mean.to(x.device), cols

    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:  # pragma: no cover - needs labels
        raise TypeError("miou needs the labels: call metric(x, y, side={'labels': ...})")


def miou_factory(device="cpu", allow_download: bool | None = None) -> MIoU:
    """The ``miou`` metric with ``$LINKSIM_SEGMENTER`` or the embedded segmenter.

    :raises linksim.errors.WeightsUnavailable: the segmenter file is absent
    """
    from linksim.codecs.gesco.segmenter import load_segmenter
    from linksim.errors import WeightsUnavailable
    from linksim.weights import resolve

    path = os.environ.get("LINKSIM_SEGMENTER") or resolve("segmenter_scenes", allow_download=False)
    try:
        net = load_segmenter(path, device)
    except FileNotFoundError as err:
        raise WeightsUnavailable("segmenter_scenes", path, "train it: linksim train segmenter "
                                 "configs/segmenter_embedded.yaml") from None
    return MIoU(net, str(path), device)


miou_factory.extra_columns = MIOU_COLUMNS
miou_factory.uses_side = True  # declared on the factory too: columns are planned before any metric is built
