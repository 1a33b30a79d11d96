"""DiffJSCC stage 2 on real Stable Diffusion 2.1-base (``backbone: sd21``), weights supplied by users.

Frozen SD parts (diffusers): ``UNet2DConditionModel`` (ε-prediction), ``AutoencoderKL`` and the
text encoder's embedding of the prompt. Trained part: :class:`DiffJSCCControl`, a diffusers
``ControlNetModel`` copied from the UNet (``ControlNetModel.from_unet``: encoder and middle block
weights, zero-initialised output convolutions) with

* the **latent route** for the spatial condition, as the published DiffJSCC ControlNet has it: the
  SD-VAE latent of the stage-1 reconstruction is concatenated to the noisy latent at the control
  net's first 3x3 convolution. Written as diffusers' ``conv_in`` on the noisy latent plus a
  bias-free 3x3 convolution on the condition (:class:`LatentConcat`, in place of diffusers' pixel
  conditioning encoder), which is the same linear map: ``conv(cat(x, c)) = conv_x(x) + conv_c(c)``.
  It starts at zero.
* the **SNR embedding** of the published ControlNet (``snr_embed``): sinusoidal features
  ``[cos | sin]`` of ``100·SNR[dB]`` (its ``snr_scale`` 100, ``min_snr`` 0) at the width of the UNet's
  first block, through an MLP (diffusers ``class_embed_type="projection"``) added to the control
  net's time embedding; its last layer starts at zero. At initialisation the control residuals are
  exactly zero, so the model is the plain SD UNet for every condition (tested).

Sampling is our own loop (diffusers' pipelines do not pass class labels to a control net): the SD
scheduler's betas, ``num_steps`` spaced DDPM steps (default 100, the paper's; diffusers
``DDPMScheduler`` with the respaced posterior), optional latent-MSE guidance towards the stage-1
latent (``guidance_scale``: ``ẑ0 ← ẑ0 − s·(ẑ0 − z_s1)``, one gradient step on ``½‖ẑ0 − z_s1‖²``, the
ε used by the step recomputed from the guided ``ẑ0``), no classifier-free guidance; the wavelet
colour fix is applied by the method (:mod:`.colorfix`).

Text: ``caption: none`` uses the empty prompt ``""``, encoded by the folder's text encoder (needs
``transformers``: ``pip install 'linksim[text]'``) or read from ``empty_prompt.safetensors``
(key ``prompt_embeds``, ``[1, 77, 1024]``) in the SD folder, written once by :func:`save_empty_prompt`.
``caption: <dir>`` captions the stage-1 reconstruction with a transformers BLIP-2 model in that
directory (optional extra; not exercised by the tests, no transformers in the test environment).

Control files: our layout (:func:`save_control`) or a published DiffJSCC checkpoint (the ldm
``control_model.*`` ControlNet of its ``ControlLDM``, full ``.ckpt`` or the control part alone):
:func:`published_control_state` splits its concatenated input convolution, maps ``snr_embed`` onto
the SNR MLP and the rest with diffusers' own ldm -> diffusers ControlNet converter. The published
``cond_encoder`` (a frozen copy of the SD VAE encoder) is not loaded: the VAE's encoder is used, and
a checkpoint whose copy differs from it is refused. Any other file is refused with the keys it
lacks (never loaded partially).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# the SD file layout and its check are torch-free (the validator's); re-exported here
from .settings import default_control_path, default_sd_path, missing_sd_files  # noqa: F401

__all__ = ["SD_SNR_SCALE", "LatentConcat", "published_control_state", "DiffJSCCControl", "SDRefiner", "default_sd_path", "default_control_path",
           "missing_sd_files", "load_sd_refiner", "save_control", "load_control", "save_empty_prompt"]

#: the published ControlNet's SNR embedding: ``snr_scale`` and ``min_snr`` (configs/model/cldm_cnn.yaml)
SD_SNR_SCALE, SD_MIN_SNR = 100.0, 0.0
#: key prefix of the control network in a published DiffJSCC ``ControlLDM`` checkpoint
PUBLISHED_PREFIX = "control_model."


def snr_features(snr_db: torch.Tensor, dim: int) -> torch.Tensor:
    """``[B]`` SNR [dB] -> ``[B, dim]`` ``[cos | sin]`` of ``(100·snr − 0)·10000^(−i/(dim/2))``: the published
    ControlNet's ``snr_embedding`` (diffusers' timestep embedding with ``flip_sin_to_cos``, no shift)."""
    from diffusers.models.embeddings import get_timestep_embedding

    return get_timestep_embedding(snr_db.float().reshape(-1) * SD_SNR_SCALE - SD_MIN_SNR, dim, flip_sin_to_cos=True,
                                  downscale_freq_shift=0)


class LatentConcat(nn.Module):
    """The condition's share of the control net's first convolution: a bias-free 3x3 conv on the
    stage-1 latent, added to ``conv_in`` of the noisy latent (= one conv of their concatenation).
    diffusers' ControlNet has a pixel-space conditioning encoder there; DiffJSCC concatenates latents."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        nn.init.zeros_(self.conv.weight)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.conv(cond)


class DiffJSCCControl(nn.Module):
    """Control network: ``(z_t, t, prompt, z_s1, snr) -> (down residuals, mid residual)`` for the UNet.

    :param controlnet: a diffusers ``ControlNetModel`` whose ``controlnet_cond_embedding`` is a
        :class:`LatentConcat` and whose class embedding is the SNR MLP (projection of the
        :func:`snr_features` of width ``block_out_channels[0]``)
    """

    def __init__(self, controlnet: nn.Module):
        super().__init__()
        self.controlnet = controlnet
        self.snr_dim = int(controlnet.config.block_out_channels[0])

    @classmethod
    def from_unet(cls, unet: nn.Module) -> "DiffJSCCControl":
        """Copy ``unet``'s encoder into a control net (zero-initialised outputs, condition conv and SNR MLP)."""
        from diffusers import ControlNetModel
        from diffusers.models.embeddings import TimestepEmbedding

        cn = ControlNetModel.from_unet(unet, conditioning_channels=unet.config.in_channels,
                                       conditioning_embedding_out_channels=(16,))
        width = cn.config.block_out_channels[0]
        cn.controlnet_cond_embedding = LatentConcat(unet.config.in_channels, width)
        time_dim = cn.time_embedding.linear_2.out_features
        cn.class_embedding = TimestepEmbedding(width, time_dim)
        nn.init.zeros_(cn.class_embedding.linear_2.weight)
        nn.init.zeros_(cn.class_embedding.linear_2.bias)
        cn.register_to_config(class_embed_type="projection", projection_class_embeddings_input_dim=width)
        return cls(cn)

    def forward(self, z_t, t, prompt_embeds, z_s1, snr_db):
        feats = snr_features(snr_db, self.snr_dim).to(z_t.device, z_t.dtype)
        down, mid = self.controlnet(z_t, t, encoder_hidden_states=prompt_embeds, controlnet_cond=z_s1,
                                    class_labels=feats, return_dict=False)
        return down, mid


class SDRefiner(nn.Module):
    """Frozen SD UNet + VAE + the control network + our sampling loop.

    :param unet: diffusers ``UNet2DConditionModel``
    :param vae: diffusers ``AutoencoderKL``
    :param control: :class:`DiffJSCCControl`
    :param prompt_embeds: ``[1, L, D]`` text embedding of the prompt (empty prompt for ``caption: none``)
    :param scheduler_config: the SD scheduler config (betas, ``prediction_type``)
    :param guidance_scale: latent-MSE guidance step ``s`` (0: off)
    :param captioner: optional ``images [B,3,H,W] -> [B, L, D]`` prompt embeddings per image
    """

    def __init__(self, unet, vae, control: DiffJSCCControl, prompt_embeds: torch.Tensor, scheduler_config: dict,
                 guidance_scale: float = 0.0, captioner=None):
        super().__init__()
        self.unet, self.vae, self.control = unet, vae, control
        self.register_buffer("prompt_embeds", prompt_embeds, persistent=False)
        self.scheduler_config = dict(scheduler_config)
        self.guidance_scale = float(guidance_scale)
        self.captioner = captioner

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """``[B,3,H,W]`` in [0,1] -> scaled VAE latent ``[B,4,H/f,W/f]`` (posterior mode)."""
        z = self.vae.encode(images.to(self.vae.dtype) * 2 - 1).latent_dist.mode()
        return z * self.vae.config.scaling_factor

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(z / self.vae.config.scaling_factor).sample.float() + 1) / 2).clamp(0, 1)

    def eps(self, z_t, t, z_s1, snr_db, prompt_embeds=None):
        """Model output (ε or v, per the scheduler) of the UNet with the control residuals."""
        b = z_t.shape[0]
        pe = self.prompt_embeds if prompt_embeds is None else prompt_embeds
        pe = pe.expand(b, -1, -1) if pe.shape[0] == 1 else pe
        t = torch.as_tensor(t, device=z_t.device).reshape(-1).expand(b)
        down, mid = self.control(z_t, t, pe, z_s1, snr_db)
        return self.unet(z_t, t, encoder_hidden_states=pe, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid).sample

    def scheduler(self):
        from diffusers import DDPMScheduler

        keep = {k: v for k, v in self.scheduler_config.items() if not k.startswith("_")}
        return DDPMScheduler.from_config(keep)

    @torch.no_grad()
    def refine(self, x_s1: torch.Tensor, snr_db, num_steps: int = 100, generator: torch.Generator | None = None):
        """Stage-1 reconstruction ``[B,3,H,W]`` in [0,1] (sides multiples of the VAE factor) -> refined image."""
        b = x_s1.shape[0]
        dev = x_s1.device
        snr = torch.as_tensor(snr_db, dtype=torch.float32, device=dev).reshape(-1).expand(b)
        z_s1 = self.encode_latent(x_s1)
        prompt = self.captioner(x_s1) if self.captioner is not None else None
        sch = self.scheduler()
        if self.guidance_scale and sch.config.prediction_type != "epsilon":
            raise ValueError("guidance_scale needs an epsilon-prediction scheduler (SD 2.1-base is one)")
        sch.set_timesteps(num_steps, device=dev)
        z = torch.randn(z_s1.shape, generator=generator, device=dev, dtype=z_s1.dtype)
        abar = sch.alphas_cumprod.to(dev)
        for t in sch.timesteps:
            out = self.eps(z, t, z_s1, snr, prompt)
            if self.guidance_scale:
                a = abar[t]
                z0 = (z - (1 - a).sqrt() * out) / a.sqrt()
                z0 = z0 - self.guidance_scale * (z0 - z_s1)
                out = (z - a.sqrt() * z0) / (1 - a).sqrt()
            z = sch.step(out, t, z, generator=generator).prev_sample
        return self.decode_latent(z)


def save_control(control: DiffJSCCControl, path: str | Path) -> None:
    """Our control-network layout: safetensors of ``DiffJSCCControl.state_dict()`` + the ControlNet config."""
    import json

    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in control.state_dict().items()}
    save_file(state, str(path), metadata={"format": "linksim-diffjscc-control",
                                          "config": json.dumps(dict(control.controlnet.config))})


def published_control_state(state: dict[str, torch.Tensor], control: DiffJSCCControl,
                            vae=None) -> dict[str, torch.Tensor]:
    """Our :class:`DiffJSCCControl` state dict from a published DiffJSCC checkpoint's tensors.

    ``control_model.input_blocks.0.0`` (a conv of ``cat(z_t, z_s1)``) is split into ``conv_in`` (the
    first ``C`` input channels) and :class:`LatentConcat` (the rest); ``snr_embed.{0,2}`` become the SNR
    MLP; everything else goes through diffusers' ldm -> diffusers ControlNet converter. With ``vae``,
    the checkpoint's ``cond_encoder`` must equal the VAE's encoder (else ``ValueError``).

    :raises ValueError: not the published layout, or a key left over / missing (named)
    """
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    ctrl = {k[len(PUBLISHED_PREFIX):]: v for k, v in state.items() if k.startswith(PUBLISHED_PREFIX)}
    if "input_blocks.0.0.weight" not in ctrl or "snr_embed.0.weight" not in ctrl:
        raise ValueError("not a published DiffJSCC control network (no control_model.input_blocks.0.0 / snr_embed)")
    cn = control.controlnet
    c = cn.config.in_channels
    w = ctrl.pop("input_blocks.0.0.weight")
    if w.shape[1] != 2 * c:
        raise ValueError(f"published input conv takes {w.shape[1]} channels; expected {2 * c} (latent + condition)")
    out = {"controlnet.controlnet_cond_embedding.conv.weight": w[:, c:].clone()}
    ctrl["input_blocks.0.0.weight"] = w[:, :c].clone()
    for i, j in ((0, 1), (2, 2)):
        for kind in ("weight", "bias"):
            out[f"controlnet.class_embedding.linear_{j}.{kind}"] = ctrl.pop(f"snr_embed.{i}.{kind}")
    converted = convert_controlnet_checkpoint(ctrl, dict(cn.config))
    out.update({f"controlnet.{k}": v for k, v in converted.items()})
    want = set(control.state_dict())
    missing, extra = sorted(want - set(out)), sorted(set(out) - want)
    if missing or extra:
        raise ValueError(f"published control network does not match this SD UNet: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    if vae is not None:
        enc = {k[len("cond_encoder.encoder."):]: v for k, v in state.items() if k.startswith("cond_encoder.encoder.")}
        ref = vae.encoder.state_dict()
        differs = [k for k, v in enc.items() if k in ref and not torch.allclose(v.float(), ref[k].float(), atol=1e-3)]
        if differs:
            raise ValueError(f"the checkpoint's cond_encoder differs from the SD VAE's encoder ({differs[0]}, ...); "
                             "only the published frozen copy is supported")
    return out


def load_control(path: str | Path, unet, vae=None) -> DiffJSCCControl:
    """A control network for ``unet`` from our layout (:func:`save_control`) or a published DiffJSCC
    checkpoint (:func:`published_control_state`); other layouts are refused (keys named)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..jscc.diffjscc_cnn import read_checkpoint

    path = Path(path)
    control = DiffJSCCControl.from_unet(unet)
    fmt = None
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as f:
            fmt = (f.metadata() or {}).get("format")
        state = load_file(str(path))
    else:
        state = read_checkpoint(path)
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith(PUBLISHED_PREFIX) for k in state):
        control.load_state_dict(published_control_state(state, control, vae), strict=True)
        return control
    want = set(control.state_dict())
    if fmt != "linksim-diffjscc-control" or set(state) != want:
        lacking = sorted(want - set(state))[:3]
        raise ValueError(f"{path}: neither a linksim DiffJSCC control file nor a published DiffJSCC checkpoint "
                         f"(format {fmt!r}; lacks e.g. {lacking})")
    control.load_state_dict(state, strict=True)
    return control


def save_empty_prompt(sd_path: str | Path) -> Path:
    """Encode ``""`` with the folder's CLIP text encoder (transformers) into ``empty_prompt.safetensors``."""
    from safetensors.torch import save_file

    sd = Path(sd_path)
    emb = _encode_prompts(sd, [""])
    save_file({"prompt_embeds": emb.contiguous()}, str(sd / "empty_prompt.safetensors"))
    return sd / "empty_prompt.safetensors"


def _encode_prompts(sd: Path, prompts: list[str]) -> torch.Tensor:
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as err:
        raise ValueError("the SD text encoder needs transformers: pip install 'linksim[text]'") from err
    tok = CLIPTokenizer.from_pretrained(sd / "tokenizer")
    enc = CLIPTextModel.from_pretrained(sd / "text_encoder").eval()
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return enc(ids.input_ids)[0].float()


def _blip2_captioner(sd: Path, caption_dir: Path, device):
    """``images -> prompt embeddings``: BLIP-2 caption of each image, encoded by the SD text encoder."""
    try:
        from transformers import Blip2ForConditionalGeneration, Blip2Processor
    except ImportError as err:
        raise ValueError("caption: <dir> needs transformers: pip install 'linksim[text]'") from err
    proc = Blip2Processor.from_pretrained(caption_dir)
    model = Blip2ForConditionalGeneration.from_pretrained(caption_dir).to(device).eval()

    @torch.no_grad()
    def captioner(images: torch.Tensor) -> torch.Tensor:
        inputs = proc(images=[im.permute(1, 2, 0).cpu().numpy() for im in images], return_tensors="pt",
                      do_rescale=False).to(device)
        texts = proc.batch_decode(model.generate(**inputs, max_new_tokens=30), skip_special_tokens=True)
        return _encode_prompts(sd, texts).to(device)

    return captioner


def load_sd_refiner(sd_path: str | None, control: str | None, caption: str = "none", device="cpu",
                    guidance_scale: float = 0.0, dtype: torch.dtype = torch.float32) -> SDRefiner:
    """Build :class:`SDRefiner` from an SD 2.1-base diffusers folder and a control file.

    :raises FileNotFoundError: one line listing every missing file (nothing is downloaded)
    """
    import json

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    missing = missing_sd_files(sd_path, control, caption)
    if missing:
        raise FileNotFoundError("backbone sd21 unavailable: missing " + ", ".join(map(str, missing)))
    sd = Path(sd_path).expanduser() if sd_path else default_sd_path()
    unet = UNet2DConditionModel.from_pretrained(sd / "unet").to(device, dtype).eval().requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(sd / "vae").to(device, dtype).eval().requires_grad_(False)
    ctrl = load_control(Path(control).expanduser() if control else default_control_path(), unet, vae).to(device, dtype).eval()
    if (sd / "empty_prompt.safetensors").is_file():
        prompt = load_file(str(sd / "empty_prompt.safetensors"))["prompt_embeds"]
    else:
        prompt = _encode_prompts(sd, [""])
    sched = json.loads((sd / "scheduler" / "scheduler_config.json").read_text())
    captioner = None if caption == "none" else _blip2_captioner(sd, Path(caption).expanduser(), device)
    return SDRefiner(unet, vae, ctrl, prompt.to(device, dtype), sched, guidance_scale, captioner).eval()
