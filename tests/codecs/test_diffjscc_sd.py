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

    save_file({"control_model.input_blocks.0.0.weight": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a linksim DiffJSCC control file"):
        load_control(tmp_path / "x.safetensors", tiny_unet())


def test_sd21_without_weights_lists_the_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
    missing = [str(p) for p in missing_sd_files(None, None)]
    assert str(tmp_path / "stable-diffusion-2-1-base" / "unet" / "diffusion_pytorch_model.safetensors") in missing
    assert str(tmp_path / "diffjscc_control.safetensors") in missing
    with pytest.raises(FileNotFoundError, match="backbone sd21 unavailable: missing .*vae/config.json"):
        load_sd_refiner(None, None)
