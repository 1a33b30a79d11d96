"""Load the public ADJSCC checkpoints (C = 2, 4, 6 at 256x256, AWGN, CSNR 0–14 dB; the JSCC codec
used by DiffCom) into :class:`~linksim.codecs.jscc.adjscc.ADJSCC`.

The public layout (read from the authors' module definitions; no code taken) names the encoder
``jscc_encoder.conv_block{1..5}.{0: conv, 1: GDN, 2: PReLU}`` and ``jscc_encoder.attention{1..4}.fc{1,2}``,
the decoder ``jscc_decoder.upconv_block{1..5}.{0: transposed conv, 1: IGDN, 2: PReLU}``,
``jscc_decoder.attention{1..5}.fc{1,2}`` and ``jscc_decoder.conv_block_out.1`` (the 7x7 output
conv). GDN tensors ``beta``/``gamma`` use the same square-root parametrisation as ours, so every
tensor loads unchanged; only names differ. Variants seen in the wild are accepted: a
``{"state_dict": ...}`` wrapper, a ``module.`` prefix (DataParallel) and ``Encoder.``/``Decoder.``
instead of ``jscc_encoder.``/``jscc_decoder.``.

Those models were trained with the received latent scaled back to the transmitter's amplitude
(and with power normalised per batch); the loaded model therefore has ``rescale_received=True``
and its :meth:`~ADJSCC.decode` needs ``tx_scale`` (the per-image transmit normaliser, which a
receiver may know: ``ChannelState.power_scale`` in spirit). Symbols are paired and normalised per
image exactly as for native models.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .adjscc import ADJSCC, ADJSCCConfig

__all__ = ["external_to_native_key", "convert_external_state_dict", "config_from_external", "load_external_adjscc"]

_ENC_BLOCK = re.compile(r"^jscc_encoder\.conv_block(\d)\.(\d)\.(.+)$")
_DEC_BLOCK = re.compile(r"^jscc_decoder\.upconv_block(\d)\.(\d)\.(.+)$")
_ATTN = re.compile(r"^jscc_(encoder|decoder)\.attention(\d)\.(fc[12]\.(?:weight|bias))$")
_PART = {"0": "convs", "1": "norms", "2": "acts"}


def _normalise_prefix(key: str) -> str:
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("Encoder."):
        key = "jscc_encoder." + key[len("Encoder."):]
    elif key.startswith("Decoder."):
        key = "jscc_decoder." + key[len("Decoder."):]
    return key


def external_to_native_key(key: str) -> str | None:
    """The native key for a public ADJSCC key, or ``None`` for keys that hold no weights we use."""
    key = _normalise_prefix(key)
    if m := _ENC_BLOCK.match(key):
        return f"encoder.{_PART[m[2]]}.{int(m[1]) - 1}.{m[3]}"
    if m := _DEC_BLOCK.match(key):
        return f"decoder.{_PART[m[2]]}.{int(m[1]) - 1}.{m[3]}"
    if m := _ATTN.match(key):
        return f"{m[1]}.af.{int(m[2]) - 1}.{m[3]}"
    if m := re.match(r"^jscc_decoder\.conv_block_out\.1\.(weight|bias)$", key):
        return f"decoder.out_conv.{m[1]}"
    return None


def _unwrap(state: dict) -> dict:
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def convert_external_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """Rename a public ADJSCC state dict to native keys (tensors unchanged, float32).

    :raises ValueError: when tensors the native model needs are missing, naming them
    """
    state = _unwrap(state)
    out, ignored = {}, []
    for k, v in state.items():
        nk = external_to_native_key(k)
        if nk is None:
            ignored.append(k)
        else:
            out[nk] = v.float()
    if not out:
        raise ValueError(f"no ADJSCC tensors found (keys start with: {sorted(state)[:5]})")
    return out


def config_from_external(state: dict) -> ADJSCCConfig:
    """``C`` and ``F`` read from the tensor shapes of a public checkpoint."""
    state = {_normalise_prefix(k): v for k, v in _unwrap(state).items()}
    try:
        filters = state["jscc_encoder.conv_block1.0.weight"].shape[0]
        channels = state["jscc_encoder.conv_block5.0.weight"].shape[0]
    except KeyError as err:
        raise ValueError(f"not an ADJSCC checkpoint: missing {err.args[0]}") from err
    return ADJSCCConfig(channels=int(channels), filters=int(filters), rescale_received=True)


def load_external_adjscc(source, device: str | torch.device = "cpu") -> ADJSCC:
    """Build an ADJSCC from a public checkpoint.

    :param source: path to a ``.pt``/``.pth``/``.pkl`` (torch) or ``.safetensors`` file, or a state dict
    :return: the model in eval mode, ``rescale_received=True``
    :raises FileNotFoundError: the file does not exist (the message names it)
    :raises ValueError: the tensors do not form an ADJSCC (missing/unexpected keys or shapes)
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"ADJSCC checkpoint not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        state = source
    model = ADJSCC(config_from_external(state))
    native = convert_external_state_dict(state)
    missing, unexpected = model.load_state_dict(native, strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match ADJSCC(C={model.channels}, F={model.config.filters}): "
                         f"missing {missing[:6]}, unexpected {unexpected[:6]}")
    return model.to(device).eval()
