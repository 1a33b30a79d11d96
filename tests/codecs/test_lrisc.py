"""``kind: lrisc``: symbol layout and channel uses, SNR adaptation, the decoder's use of its
condition, determinism, bad input, and the staged training's resume."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest
import torch

from linksim.cli import main
from linksim.codecs.base import OperatingPoint
from linksim.codecs.images import embedded_photos, resize_center_crop
from linksim.codecs.lrisc.method import EMBEDDED_DECODER, EMBEDDED_WEIGHTS, LRISCMethod, LRISCSettings
from linksim.codecs.lrisc.model import LRISC
from linksim.phy.links import LinkConfig

needs_embedded = pytest.mark.skipif(not EMBEDDED_WEIGHTS.is_file(), reason="embedded LRISC weights not committed")
needs_decoder = pytest.mark.skipif(not (EMBEDDED_DECODER / "training.json").is_file(),
                                   reason="embedded LRISC diffusion decoder not committed")


def _point(csnr_db=10.0, cbr="1/24", size=(64, 64), kind="awgn"):
    return OperatingPoint(csnr_db=csnr_db, cbr=Fraction(cbr), link=LinkConfig(kind=kind), image_shape=size)


def _heldout(size=64):
    photos = embedded_photos(("coffee", "chelsea"))
    return torch.stack([resize_center_crop(photos[n], size, size) for n in ("coffee", "chelsea")])


def _gens(seed=0):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)


def _send(m, images, seed=0, decode_seed=5):
    tx = m.encode(images, None)
    rx = m.channel(tx, *_gens(seed))
    return tx, m.decode(rx, torch.Generator().manual_seed(decode_seed))


@pytest.fixture(scope="module")
def tiny():
    """An untrained small LRISC (a test fixture, never shipped): layout tests need no trained weights."""
    torch.manual_seed(3)
    return LRISC(filters=16, latent=8, hyper=8, jscc_filters=16, group=2).eval().requires_grad_(False)


class TestLayout:
    def test_fixed_total_budget_unit_power_and_counted_side_information(self, tiny):
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total", side_channel="ideal",
                                      side_bits_per_symbol=1.0), _point(cbr="1/24"), model=tiny)
        assert m.layout == (16, 48, 512 - 48)  # G = (64/16)^2, 16 groups x 3 bits at 1 bit/use
        images = torch.rand(3, 3, 64, 64)
        tx, dec = _send(m, images)
        used = tx.meta["data_symbols"]
        for b in range(3):  # the sent symbols (first Σk on the air) have unit power per image
            assert float(tx.x[b, : int(used[b])].abs().square().mean()) == pytest.approx(1.0, abs=1e-5)
        k = tx.meta["lengths"]
        assert set(k.unique().tolist()) <= set(tiny.table.lengths)
        assert (k.sum(dim=1) == used).all()
        assert dec.extras["channel_uses"] == [int(u) + 48 for u in used]
        assert max(dec.extras["channel_uses"]) <= 512  # never above N = rho * 3HW

    def test_noise_free_decode_equals_the_unpacked_direct_path(self, tiny):
        """At 150 dB the packed transmission must decode to what the JSCC gives on its own symbols
        (an independent path: no packing, no filler, no chain)."""
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total"), _point(csnr_db=150.0), model=tiny)
        images = torch.rand(2, 3, 64, 64)
        _, dec = _send(m, images)
        with torch.no_grad():
            y = tiny.analysis(images)
            k = m.lengths(y)
            snr = torch.full((2, 1), 150.0)
            direct = tiny.synthesis(tiny.jscc_decode(tiny.jscc_encode(y, k, snr), k, snr, y.shape[-2:])).clamp(0, 1)
        torch.testing.assert_close(dec.images, direct, atol=1e-3, rtol=0)  # a wrong permutation: ~0.1

    def test_deterministic(self, tiny):
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total"), _point(csnr_db=5.0), model=tiny)
        images = torch.rand(2, 3, 64, 64)
        a, b = _send(m, images, seed=7)[1].images, _send(m, images, seed=7)[1].images
        c = _send(m, images, seed=8)[1].images
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_cbr_below_the_side_information_is_rejected(self, tiny):
        # 64x64 at CBR 1/256: N = 48 channel uses, exactly the 48 side-information uses
        with pytest.raises(ValueError, match="not more than the side information's 48"):
            LRISCMethod.plan(tiny, LRISCSettings(side_channel="ideal", side_bits_per_symbol=1.0), _point(cbr="1/256"))
        assert LRISCMethod.plan(tiny, LRISCSettings(side_channel="ideal", side_bits_per_symbol=2.0),
                                _point(cbr="1/256"))[2] == 24
        # ldpc (default 0.5 bits per use): 48 bits + CRC16 at rate 1/4 in QPSK = 128 channel uses
        with pytest.raises(ValueError, match="not more than the side information's 128"):
            LRISCMethod.plan(tiny, LRISCSettings(), _point(cbr="1/256"))


@needs_embedded
class TestEmbedded:
    def test_psnr_rises_with_snr_on_heldout_images(self):
        images = _heldout()
        psnr = {}
        for snr in (0.0, 10.0, 20.0):
            m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total", side_channel="ideal"),
                            _point(csnr_db=snr))
            out = torch.stack([_send(m, images, seed=s)[1].images for s in range(3)])
            mse = (out - images).square().mean(dim=(0, 2, 3, 4))
            psnr[snr] = float((-10 * torch.log10(mse)).mean())
        # common random numbers (the same unit noise at every CSNR): the differences are systematic.
        # The CPU-trained model gains 0.7 dB from 0 to 10 dB and little above (README)
        assert psnr[0.0] + 0.3 < psnr[10.0] < psnr[20.0], psnr

    def test_textured_image_gets_more_symbols_than_a_flat_one(self):
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="adaptive"), _point(cbr="1/48"))
        flat = torch.full((1, 3, 64, 64), 0.5)
        textured = _heldout()[:1]  # coffee
        used = m.encode(torch.cat([flat, textured]), None).meta["data_symbols"]
        assert int(used[1]) > int(used[0]), used

    @pytest.mark.parametrize("cbr", ["1/48", "1/24"])
    def test_adaptive_mean_meets_the_budget_on_held_out_photos(self, cbr):
        """``length: adaptive`` with β calibrated on the training photos at the scenario's size spends
        within 10 % of the budget on average over the two held-out photos (measured +6 / +7 %); the
        stored training-crop calibration overspends by more than 25 % (measured +35 %), which is why
        it is not the default. Neither calibration sees coffee or chelsea."""
        images = _heldout()
        ratio = {}
        for cal in ("photos", "crops"):
            m = LRISCMethod(LRISCSettings(decoder="synthesis", length="adaptive", calibration=cal, side_channel="ideal",
                                          side_bits_per_symbol=1.0),
                            _point(cbr=cbr))
            used = m.encode(images, None).meta["data_symbols"].double()
            ratio[cal] = float(used.mean()) / m.data_budget
        assert abs(ratio["photos"] - 1) <= 0.10 < 0.25 < ratio["crops"] - 1, ratio

    def test_ldpc_side_channel_sends_the_lengths_in_the_frame(self):
        """``side_channel: ldpc`` at 1 bit per use: 16 groups x 3 bits = 48 bits + CRC16 = 64, rate 1/2
        -> 128 coded bits -> 64 QPSK symbols, counted (hand count); at 20 dB every side word decodes and
        the image equals the one decoded with the true lengths handed over; the frame is 64 symbols longer."""
        images = _heldout()
        ideal = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total", side_channel="ideal",
                                          side_bits_per_symbol=1.0),
                            _point(csnr_db=20.0))
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total", side_channel="ldpc",
                                      side_bits_per_symbol=1.0), _point(csnr_db=20.0))
        robust = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total"), _point(csnr_db=20.0))
        assert robust.side == 128  # the default, rate 1/4: 256 coded bits
        assert m.side == 64 and ideal.side == 48 and m.num_chain == ideal.num_chain + 64
        tx, dec = _send(m, images)
        assert dec.extras["side_ok"].all() and not dec.outage.any()
        n = 3 * 64 * 64 // 24  # CBR 1/24 of a 64x64 image: 512 channel uses
        assert all(u <= n for u in dec.extras["channel_uses"])
        # the same frame with the lengths handed over (what ideal does) gives the same image
        rx = m.channel(tx, *_gens(0))
        ref_k = tx.meta["lengths"]
        assert torch.equal(m._bits_lengths(m._length_bits(ref_k)), ref_k)
        assert torch.allclose(dec.images, m.decode(rx, torch.Generator().manual_seed(5)).images)

    def test_ldpc_side_channel_loss_is_an_outage(self):
        """At -8 dB the side word (rate 1/2 QPSK needs about 1 dB) fails: the image is lost (grey
        fallback, outage), never decoded with lengths the receiver could not know."""
        m = LRISCMethod(LRISCSettings(decoder="synthesis", length="fixed_total", side_channel="ldpc",
                                      side_bits_per_symbol=1.0), _point(csnr_db=-8.0))
        _, dec = _send(m, _heldout())
        assert (~dec.extras["side_ok"]).all() and dec.outage.all()
        assert torch.all(dec.images == 0.5)

    @needs_decoder
    def test_diffusion_decoder_uses_its_condition(self):
        """Outputs for two latents differ and each is closer to its own source image (swap test)."""
        m = LRISCMethod(LRISCSettings(decoder="diffusion", length="fixed_total", num_steps=10), _point(csnr_db=20.0))
        images = _heldout()
        _, dec = _send(m, images)
        out = dec.images
        assert dec.nfe == 10
        d = torch.cdist(out.flatten(1), images.flatten(1))  # [outputs, sources]
        assert d[0, 0] < d[0, 1] and d[1, 1] < d[1, 0], d

    @needs_decoder
    def test_diffusion_decoder_is_deterministic(self):
        m = LRISCMethod(LRISCSettings(num_steps=4), _point())
        images = _heldout()
        assert torch.equal(_send(m, images)[1].images, _send(m, images)[1].images)

    def test_cli_cbr_below_side_information_exits_2(self, tmp_path, capsys):
        f = tmp_path / "s.yaml"
        f.write_text("name: s\ndata: {source: embedded, size: 64, limit: 1}\nchannel: {kind: awgn}\n"
                     "sweep: {csnr_db: [10], cbr: ['1/256']}\nmethods:\n  - {name: l, kind: lrisc, decoder: synthesis}\n")
        assert main(["validate", str(f)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "methods[0]" in err[0] and "side information" in err[0], err

    def test_engine_reports_per_image_channel_uses(self, tmp_path):
        from linksim.runner import run_scenario
        from linksim.scenario import scenario_from_dict

        scn = scenario_from_dict({
            "name": "l", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 64, "limit": 3},
            "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [10], "cbr": ["1/48"]},
            "methods": [{"name": "lrisc", "kind": "lrisc", "decoder": "synthesis"}], "metrics": ["psnr"]})
        run_scenario(scn, output=tmp_path / "out", progress=None)
        df = pd.read_csv(tmp_path / "out" / "results.csv")
        assert (df.channel_uses == df.data_symbols + df.side_symbols).all()
        assert df.channel_uses.nunique() > 1  # adaptive: lengths follow each image's content
        # side_channel: ldpc (default): 48 length bits + CRC16 at rate 1/4 in QPSK = 128 channel uses, counted
        assert (df.side_symbols == 128).all() and df.psnr.notna().all() and df.side_ok.all()


class TestTraining:
    def test_stage_resumes_bit_for_bit(self, tmp_path):
        from linksim.codecs.lrisc.training import train_lrisc

        cfg = {"name": "t", "stage": "transform", "steps": 4, "batch_size": 2, "checkpoint_every": 2,
               "device": "cpu", "data": {"crop": 32, "scales": [0.25]},
               "model": {"filters": 8, "latent": 8, "hyper": 8, "jscc_filters": 8}}
        a = train_lrisc(cfg, tmp_path / "a", progress=False)
        assert train_lrisc(cfg, tmp_path / "b", progress=False, stop_at=2) is None
        b = train_lrisc(cfg, tmp_path / "b", progress=False)
        ta = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
        tb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
        assert ta["losses"] == tb["losses"] and len(ta["losses"]) == 4
        for k, v in ta["model"].items():
            assert torch.equal(v, tb["model"][k]), k
        assert a.is_file() and b.is_file()

    def test_later_stages_need_init(self):
        from pydantic import ValidationError

        from linksim.codecs.lrisc.training import load_lrisc_train_config

        with pytest.raises(ValidationError, match="needs init"):
            load_lrisc_train_config({"stage": "jscc"})
