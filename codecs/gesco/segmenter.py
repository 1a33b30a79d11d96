"""A small segmenter for the ``miou`` metric (trained on clean procedural scenes).

GESCO's paper scores generated images with a pretrained segmenter (DRN-D-105 on Cityscapes); no
registry package ships one for our scenes, so linksim trains a small encoder-decoder
(:class:`Segmenter`) on clean scenes (``linksim train segmenter CONFIG``) and ships it
(``embedded/segmenter.safetensors`` + ``.json``).

>>> net = Segmenter(SegmenterConfig())
>>> net(torch.zeros(2, 3, 32, 64)).shape
torch.Size([2, 8, 32, 64])
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from linksim.weights import verify_shipped

from ..configs import StrictModel
from .settings import EMBEDDED_DIR  # the weights folder (torch-free)

__all__ = ["per_image_iou", "SegmenterConfig", "Segmenter", "EMBEDDED_DIR", "EMBEDDED_SEGMENTER", "load_segmenter", "save_segmenter"]

EMBEDDED_SEGMENTER = EMBEDDED_DIR / "segmenter.safetensors"


class SegmenterConfig(StrictModel):
    """:param num_classes: output classes; :param channels: width per level (each halves H, W)."""

    num_classes: int = Field(8, ge=2)
    channels: list[int] = [24, 48, 64]


def _block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8 if cout % 8 == 0 else 1, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8 if cout % 8 == 0 else 1, cout), nn.SiLU())


class Segmenter(nn.Module):
    """U-shaped conv segmenter.

    :input images: ``[B, 3, H, W]`` float in [0, 1] (``H, W`` any; padded to the level multiple)
    :output logits: ``[B, num_classes, H, W]``
    """

    def __init__(self, config: SegmenterConfig | None = None):
        super().__init__()
        cfg = self.config = config or SegmenterConfig()
        ch = cfg.channels
        self.enc = nn.ModuleList([_block(3 if i == 0 else ch[i - 1], c) for i, c in enumerate(ch)])
        self.dec = nn.ModuleList([_block(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(len(ch) - 1))])
        self.head = nn.Conv2d(ch[0], cfg.num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        m = 2 ** (len(self.config.channels) - 1)
        x = F.pad(images * 2 - 1, (0, (-w) % m, 0, (-h) % m), mode="replicate")
        skips = []
        for i, blk in enumerate(self.enc):
            x = blk(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for blk in self.dec:
            x = blk(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skips.pop()], dim=1))
        return self.head(x)[..., :h, :w]

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, H, W]`` long class ids."""
        return self(images).argmax(dim=1)


def per_image_iou(pred: torch.Tensor, ref: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[B, K]`` IoU per image and class (NaN where the class is in neither map).

    :param pred: ``[B, H, W]`` predicted ids; :param ref: ``[B, H, W]`` reference ids (``>= K`` ignored)
    """
    valid = ref < num_classes
    p = F.one_hot(pred.clamp(max=num_classes - 1), num_classes).bool() & valid[..., None]
    r = F.one_hot(torch.where(valid, ref, 0), num_classes).bool() & valid[..., None]
    inter = (p & r).flatten(1, 2).sum(1).double()
    union = (p | r).flatten(1, 2).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))


def save_segmenter(net: Segmenter, path: str | Path, extra: dict | None = None, dtype=torch.float16) -> Path:
    """``path`` (.safetensors, ``dtype``) + ``path.with_suffix('.json')`` (config + ``extra``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps({"config": net.config.model_dump(), **(extra or {})}, indent=1))
    return path


def load_segmenter(path: str | Path = EMBEDDED_SEGMENTER, device: str | torch.device = "cpu") -> Segmenter:
    """A :class:`Segmenter` from ``path`` (+ its ``.json``), float32, eval mode.

    :raises FileNotFoundError: the weight file or its config is absent
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"segmenter weights not found: {path} (+ {meta_path.name})")
    meta = json.loads(meta_path.read_text())
    net = Segmenter(SegmenterConfig(**meta["config"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(verify_shipped(path))).items()})
    return net.to(device).eval()
