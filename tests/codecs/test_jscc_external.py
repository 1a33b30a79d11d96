"""Public ADJSCC checkpoint layout -> our modules.

The fixture builds a state dict with the public key names and shapes (random tensors), and the
reference output is computed by a plain functional implementation of the public architecture that
reads those keys directly, independent of our module structure and key mapping.
"""

import pytest
import torch
import torch.nn.functional as F

from linksim.codecs.jscc.external import config_from_external, load_external_adjscc

C, FIL = 2, 32  # small stand-in for the public C=2, F=256 model; same key names and shape rules


def public_layout(c=C, f=FIL, seed=0):
    """Key -> tensor in the public ADJSCC layout (GDN stored as sqrt(value + pedestal))."""
    g = torch.Generator().manual_seed(seed)
    h = (f + 1) // 16
    sd = {}

    def rnd(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    def gdn(prefix, ch):
        sd[f"{prefix}.beta"] = 1.0 + 0.2 * torch.rand(ch, generator=g)
        sd[f"{prefix}.gamma"] = torch.sqrt(0.1 * torch.eye(ch) + 0.01 * torch.rand(ch, ch, generator=g))

    enc = [(3, f, 9), (f, f, 5), (f, f, 5), (f, f, 5), (f, c, 5)]
    for i, (ci, co, k) in enumerate(enc, 1):
        sd[f"jscc_encoder.conv_block{i}.0.weight"] = rnd(co, ci, k, k)
        sd[f"jscc_encoder.conv_block{i}.0.bias"] = rnd(co)
        gdn(f"jscc_encoder.conv_block{i}.1", co)
        if i < 5:
            sd[f"jscc_encoder.conv_block{i}.2.weight"] = torch.tensor([0.1 + 0.05 * i])
    dec = [(c, f, 5), (f, f, 5), (f, f, 5), (f, f, 5), (f, f, 9)]
    for i, (ci, co, k) in enumerate(dec, 1):
        sd[f"jscc_decoder.upconv_block{i}.0.weight"] = rnd(ci, co, k, k)  # ConvTranspose: [in, out, k, k]
        sd[f"jscc_decoder.upconv_block{i}.0.bias"] = rnd(co)
        gdn(f"jscc_decoder.upconv_block{i}.1", co)
        sd[f"jscc_decoder.upconv_block{i}.2.weight"] = torch.tensor([0.3 - 0.02 * i])
    for part, n in (("encoder", 4), ("decoder", 5)):
        for i in range(1, n + 1):
            p = f"jscc_{part}.attention{i}"
            sd[f"{p}.fc1.weight"], sd[f"{p}.fc1.bias"] = rnd(h, f + 1, scale=0.3), rnd(h)
            sd[f"{p}.fc2.weight"], sd[f"{p}.fc2.bias"] = rnd(f, h, scale=0.3), rnd(f)
    sd["jscc_decoder.conv_block_out.1.weight"] = rnd(3, f, 7, 7)
    sd["jscc_decoder.conv_block_out.1.bias"] = rnd(3)
    return sd


def _gdn(x, sd, p, inverse):
    ped = (2.0**-18) ** 2
    beta = sd[f"{p}.beta"].clamp_min((1e-6 + ped) ** 0.5) ** 2 - ped
    gamma = sd[f"{p}.gamma"].clamp_min(2.0**-18) ** 2 - ped
    norm = torch.sqrt(F.conv2d(x * x, gamma[:, :, None, None], beta))
    return x * norm if inverse else x / norm


def _af(x, sd, p, snr):
    ctx = torch.cat([snr, x.mean((2, 3))], 1)  # SNR first
    s = torch.sigmoid(F.linear(torch.relu(F.linear(ctx, sd[f"{p}.fc1.weight"], sd[f"{p}.fc1.bias"])),
                               sd[f"{p}.fc2.weight"], sd[f"{p}.fc2.bias"]))
    return x * s[:, :, None, None]


def ref_encoder(sd, x, snr):
    for i, (k, s) in enumerate([(9, 2), (5, 2), (5, 1), (5, 1), (5, 1)], 1):
        p = f"jscc_encoder.conv_block{i}"
        x = _gdn(F.conv2d(x, sd[f"{p}.0.weight"], sd[f"{p}.0.bias"], stride=s, padding=k // 2), sd, f"{p}.1", False)
        if i < 5:
            x = _af(F.prelu(x, sd[f"{p}.2.weight"]), sd, f"jscc_encoder.attention{i}", snr)
    return x


def ref_decoder(sd, z, snr):
    for i, (k, s) in enumerate([(5, 1), (5, 1), (5, 1), (5, 2), (9, 2)], 1):
        p = f"jscc_decoder.upconv_block{i}"
        z = F.conv_transpose2d(z, sd[f"{p}.0.weight"], sd[f"{p}.0.bias"], stride=s, padding=k // 2, output_padding=s - 1)
        z = _af(F.prelu(_gdn(z, sd, f"{p}.1", True), sd[f"{p}.2.weight"]), sd, f"jscc_decoder.attention{i}", snr)
    z = F.pad(z, (3, 3, 3, 3), mode="reflect")
    return torch.sigmoid(F.conv2d(z, sd["jscc_decoder.conv_block_out.1.weight"], sd["jscc_decoder.conv_block_out.1.bias"]))


def test_config_inferred_from_shapes():
    cfg = config_from_external(public_layout(c=6, f=32))
    assert (cfg.channels, cfg.filters, cfg.rescale_received) == (6, 32, True)


@pytest.mark.parametrize("wrap", ["plain", "state_dict_module", "Encoder_Decoder"])
def test_external_layout_reproduces_reference_outputs(tmp_path, wrap):
    sd = public_layout()
    if wrap == "state_dict_module":
        src = {"state_dict": {"module." + k: v for k, v in sd.items()}}
    elif wrap == "Encoder_Decoder":
        src = {k.replace("jscc_encoder.", "Encoder.").replace("jscc_decoder.", "Decoder."): v for k, v in sd.items()}
    else:
        src = sd
    path = tmp_path / "adjscc_c2.pth"
    torch.save(src, path)
    model = load_external_adjscc(path)

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    snr = torch.tensor([[3.0], [12.0]])
    with torch.no_grad():
        z_ref = ref_encoder(sd, x, snr)
        z = model.latent(x, snr.reshape(2))
        assert torch.allclose(z, z_ref, atol=1e-5)
        # full link without noise: unit-power symbols, rescaled at the receiver as the public code does
        sym, scale = model.encode(x, snr.reshape(2), return_scale=True)
        out = model.decode(sym, snr.reshape(2), image_size=(32, 32), tx_scale=scale)
        assert torch.allclose(out, ref_decoder(sd, z_ref, snr), atol=1e-5)
        with pytest.raises(ValueError, match="tx_scale"):
            model.decode(sym, 3.0)


def test_missing_or_wrong_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_external_adjscc(tmp_path / "nowhere.pth")
    sd = public_layout()
    del sd["jscc_decoder.attention5.fc2.bias"]
    with pytest.raises(ValueError, match="attention|af.4"):
        load_external_adjscc(sd)
