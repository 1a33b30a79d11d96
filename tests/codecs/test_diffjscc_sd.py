"""DiffJSCC's Stable Diffusion path on TINY random configs (no SD weights exist in the test
environment): zero-initialised control = the frozen UNet, the SNR reaches the model after
training steps, folder loading, missing weights -> unavailable with the file names."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from linksim.codecs.diffjscc.sd import (DiffJSCCControl, SDRefiner, load_control, load_sd_refiner,
                                        missing_sd_files, save_control)

CROSS = 16


def tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CROSS, attention_head_dim=4, norm_num_groups=8,
    ).eval()


def tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                         norm_num_groups=8, sample_size=16).eval()


def test_zero_initialised_control_equals_frozen_unet_for_any_condition():
    unet = tiny_unet()
    ctrl = DiffJSCCControl.from_unet(unet)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 8, 8, generator=g)
    prompt = torch.randn(1, 5, CROSS, generator=g)
    ref = SDRefiner(unet, tiny_vae(), ctrl, prompt, {"num_train_timesteps": 1000})
    t = torch.tensor([10, 700])
    with torch.no_grad():
        plain = unet(z, t, encoder_hidden_states=prompt.expand(2, -1, -1)).sample
        for snr, cond in ((0.0, torch.randn(2, 4, 8, 8, generator=g)), (14.0, torch.randn(2, 4, 8, 8, generator=g) * 5)):
            got = ref.eps(z, t, cond, torch.tensor([snr, snr]))
            torch.testing.assert_close(got, plain, rtol=0, atol=1e-6)


def test_snr_reaches_the_model_after_training_steps():
    unet = tiny_unet().requires_grad_(False)
    ctrl = DiffJSCCControl.from_unet(unet)
    ref = SDRefiner(unet, tiny_vae(), ctrl, torch.zeros(1, 5, CROSS), {"num_train_timesteps": 1000})
    g = torch.Generator().manual_seed(3)
    z, cond, target = (torch.randn(4, 4, 8, 8, generator=g) for _ in range(3))
    t = torch.tensor([100, 300, 500, 900])
    snr = torch.tensor([0.0, 5.0, 10.0, 14.0])
    opt = torch.optim.Adam(ctrl.parameters(), lr=1e-2)
    # zero convs and the zero SNR layer only receive gradient once the other is non-zero: 3 steps
    for _ in range(3):
        loss = (ref.eps(z, t, cond, snr) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ctrl.controlnet.class_embedding.linear_2.weight.abs().sum() > 0
    with torch.no_grad():
        a = ref.eps(z[:1], t[:1], cond[:1], torch.tensor([1.0]))
        b = ref.eps(z[:1], t[:1], cond[:1], torch.tensor([10.0]))
    assert (a - b).abs().max() > 1e-6


def _write_sd_folder(tmp_path):
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    sd = tmp_path / "sd"
    unet, vae = tiny_unet(), tiny_vae()
    unet.save_pretrained(sd / "unet")
    vae.save_pretrained(sd / "vae")
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                  beta_end=0.012, prediction_type="epsilon").save_pretrained(sd / "scheduler")
    save_file({"prompt_embeds": torch.zeros(1, 5, CROSS)}, str(sd / "empty_prompt.safetensors"))
    ctrl = DiffJSCCControl.from_unet(unet)
    torch.nn.init.normal_(ctrl.controlnet.controlnet_mid_block.weight, std=0.01)  # non-zero: the file is read
    save_control(ctrl, tmp_path / "control.safetensors")
    return sd, ctrl


def test_sd_folder_loading_on_a_tiny_config(tmp_path):
    sd, ctrl = _write_sd_folder(tmp_path)
    assert missing_sd_files(str(sd), str(tmp_path / "control.safetensors")) == []
    ref = load_sd_refiner(str(sd), str(tmp_path / "control.safetensors"), guidance_scale=0.1)
    torch.testing.assert_close(ref.control.controlnet.controlnet_mid_block.weight, ctrl.controlnet.controlnet_mid_block.weight)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out1 = ref.refine(x, 5.0, num_steps=3, generator=torch.Generator().manual_seed(7))
    out2 = ref.refine(x, 5.0, num_steps=3, generator=torch.Generator().manual_seed(7))
    assert out1.shape == (1, 3, 16, 16) and torch.equal(out1, out2)
    assert 0 <= out1.min() and out1.max() <= 1


def test_foreign_control_layout_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"some_model.weight": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="neither a linksim DiffJSCC control file nor a published"):
        load_control(tmp_path / "x.safetensors", tiny_unet())
    save_file({"control_model.input_blocks.0.0.weight": torch.zeros(1)}, str(tmp_path / "y.safetensors"))
    with pytest.raises(ValueError, match="not a published DiffJSCC control network"):
        load_control(tmp_path / "y.safetensors", tiny_unet())


# -- the published DiffJSCC layout (ldm ControlNet of ControlLDM, model/cldm.py of the authors' code),
# written out here for the tiny config: input_blocks.0.0 = conv of cat(z_t, z_s1); input_blocks.{1,3}
# = ResBlock (+ SpatialTransformer in block 1), input_blocks.2.0.op = down-sampling conv; zero_convs.i.0;
# middle_block.{0,1,2} = ResBlock, SpatialTransformer, ResBlock; middle_block_out.0; time_embed.{0,2};
# snr_embed.{0,2}; an optional cond_encoder (copy of the SD VAE encoder).
_RES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
        "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def _published_layout(ours: dict) -> dict:
    """Our state dict rewritten in the published key layout (the inverse of the mapping under test,
    written from the published architecture, not from our loader)."""
    out = {}

    def put(ldm_key, value):
        out["control_model." + ldm_key] = value.clone()

    for k, v in ours.items():
        k = k.removeprefix("controlnet.")
        head, _, rest = k.partition(".")
        if k.startswith("time_embedding.linear_"):
            put(f"time_embed.{0 if k[22] == '1' else 2}.{k.split('.')[-1]}", v)
        elif k.startswith("class_embedding.linear_"):
            put(f"snr_embed.{0 if k[23] == '1' else 2}.{k.split('.')[-1]}", v)
        elif k.startswith("conv_in."):
            continue  # below, concatenated with the condition's conv
        elif k.startswith("controlnet_cond_embedding."):
            continue
        elif k.startswith("controlnet_down_blocks."):
            i, kind = k.split(".")[1], k.split(".")[2]
            put(f"zero_convs.{i}.0.{kind}", v)
        elif k.startswith("controlnet_mid_block."):
            put(f"middle_block_out.0.{k.split('.')[-1]}", v)
        elif k.startswith("down_blocks."):
            parts = k.split(".")
            b, sub, j = int(parts[1]), parts[2], int(parts[3])
            tail = ".".join(parts[4:])
            if sub == "resnets":  # layers_per_block = 1: block b's resnet is input block 1 + 2b
                layer, _, kind = tail.rpartition(".")
                put(f"input_blocks.{1 + 2 * b}.0.{_RES[layer]}.{kind}", v)
            elif sub == "attentions":
                put(f"input_blocks.{1 + 2 * b}.1.{tail}", v)
            else:  # downsamplers.0.conv
                put(f"input_blocks.{2 + 2 * b}.0.op.{tail.split('.')[-1]}", v)
        elif k.startswith("mid_block."):
            parts = k.split(".")
            sub, j, tail = parts[1], int(parts[2]), ".".join(parts[3:])
            if sub == "resnets":
                layer, _, kind = tail.rpartition(".")
                put(f"middle_block.{2 * j}.{_RES[layer]}.{kind}", v)
            else:
                put(f"middle_block.1.{tail}", v)
        else:
            raise AssertionError(f"unexpected key of our control net: {k}")
    w = torch.cat([ours["controlnet.conv_in.weight"], ours["controlnet.controlnet_cond_embedding.conv.weight"]], dim=1)
    put("input_blocks.0.0.weight", w)
    put("input_blocks.0.0.bias", ours["controlnet.conv_in.bias"])
    return out


def _random_control(unet, seed=5):
    ctrl = DiffJSCCControl.from_unet(unet)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ctrl.parameters():  # every tensor distinct, so a misplaced one is caught
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return ctrl


def test_published_control_layout_maps_onto_ours(tmp_path):
    """A locally generated file in the published DiffJSCC layout (full-checkpoint style: its
    ``state_dict`` with ``control_model.*``, a ``cond_encoder`` equal to the VAE's, other parts)
    loads onto our module tensor by tensor, and the split input conv is the published conv of
    ``cat(z_t, z_s1)`` (checked with F.conv2d); the SNR features are the published ``snr_embedding``."""
    import math

    import torch.nn.functional as F

    from linksim.codecs.diffjscc.sd import snr_features

    unet, vae = tiny_unet(), tiny_vae()
    ref = _random_control(unet)
    state = _published_layout(ref.state_dict())
    state.update({f"cond_encoder.encoder.{k}": v.clone() for k, v in vae.encoder.state_dict().items()})
    state["model.diffusion_model.conv_in.weight"] = torch.zeros(1)  # the frozen SD UNet, ignored
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "diffjscc.ckpt")
    got = load_control(tmp_path / "diffjscc.ckpt", unet, vae)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(got.state_dict()[k], v, rtol=0, atol=0, msg=k)
    g = torch.Generator().manual_seed(9)
    z, c = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    cn = got.controlnet
    w, b = state["control_model.input_blocks.0.0.weight"], state["control_model.input_blocks.0.0.bias"]
    torch.testing.assert_close(cn.conv_in(z) + cn.controlnet_cond_embedding(c),
                               F.conv2d(torch.cat([z, c], 1), w, b, padding=1), rtol=1e-5, atol=1e-5)
    snr, dim = torch.tensor([0.0, 7.5]), 16
    freqs = torch.exp(-math.log(10000) * torch.arange(dim // 2) / (dim // 2))
    args = (snr[:, None] * 100 - 0) * freqs[None]  # snr_scale 100, min_snr 0 (cldm_cnn.yaml)
    torch.testing.assert_close(snr_features(snr, dim), torch.cat([torch.cos(args), torch.sin(args)], -1))
    # a cond_encoder that is not the VAE's frozen copy is refused
    state["cond_encoder.encoder.conv_in.weight"] = state["cond_encoder.encoder.conv_in.weight"] + 1
    torch.save({"state_dict": state}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="cond_encoder differs"):
        load_control(tmp_path / "other.ckpt", unet, vae)


def test_published_control_layout_for_another_unet_is_refused(tmp_path):
    """A published control net of another width does not load partially: one error naming keys."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(1)
    wide = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CROSS, attention_head_dim=4, norm_num_groups=8).eval()
    torch.save(_published_layout(_random_control(wide).state_dict()), tmp_path / "c.pth")
    with pytest.raises((ValueError, RuntimeError)):
        load_control(tmp_path / "c.pth", tiny_unet())


def test_sd21_without_weights_lists_the_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
    missing = [str(p) for p in missing_sd_files(None, None)]
    assert str(tmp_path / "stable-diffusion-2-1-base" / "unet" / "diffusion_pytorch_model.safetensors") in missing
    assert str(tmp_path / "diffjscc_control.safetensors") in missing
    with pytest.raises(FileNotFoundError, match="backbone sd21 unavailable: missing .*vae/config.json"):
        load_sd_refiner(None, None)
