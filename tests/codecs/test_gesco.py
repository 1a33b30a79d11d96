"""GESCO: scenes, FDS, σ table, CFG, channel-use accounting, loaders (tiny random nets: accounting only)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from linksim.codecs.base import OperatingPoint
from linksim.codecs.gesco.labelled import PairingError, load_labelled
from linksim.codecs.gesco.model import SemanticUNet, SemanticUNetConfig, fds, guided_eps, insert_absent
from linksim.codecs.gesco.scenes import NUM_CLASSES, render_scene, scene_set
from linksim.codecs.gesco.semantic import NOISY_TRAINING_SIGMAS, PAPER_SIGMA, condition, present_classes
from linksim.codecs.gesco.training import confusion, export_gesco, miou_from_confusion
from linksim.phy.links import LinkConfig

TINY = SemanticUNetConfig(channels=[8, 16, 16], groups=4, spade_hidden=8, time_dim=16)


# ----------------------------------------------------------------------------- scenes
def test_scenes_deterministic_and_consistent():
    a = render_scene(32, 64, seed=3, index=5)
    b = render_scene(32, 64, seed=3, index=5)
    c = render_scene(32, 64, seed=4, index=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])
    img, lab, inst = a
    assert img.min() >= 0 and img.max() <= 1 and lab.max() < NUM_CLASSES
    things = inst > 0
    np.testing.assert_array_equal(inst[things] // 1000, lab[things])  # instance ids name their class
    # scene i does not depend on which other scenes are rendered
    s = scene_set(32, 64, 3, seed=3, start=4)
    np.testing.assert_array_equal(s.labels[1].numpy(), lab)


def test_scene_speed_tens_of_ms():
    import time

    t = time.perf_counter()
    scene_set(64, 128, 5, seed=0)
    assert (time.perf_counter() - t) / 5 < 0.2  # generous bound for a loaded CI machine


# ----------------------------------------------------------------------------- FDS, σ, CFG
def test_fds_hand_computed():
    # a column of ones at x = 0 on a 3x6 map: avg3 (replicate pad) -> [2/3, 1/3, 0, ...];
    # max3 (replicate pad) of that -> [2/3, 2/3, 1/3, 0, 0, 0] on every row
    m = torch.zeros(1, 1, 3, 6)
    m[..., 0] = 1
    want = torch.tensor([2 / 3, 2 / 3, 1 / 3, 0, 0, 0]).expand(3, 6)
    torch.testing.assert_close(fds(m)[0, 0], want)


def test_absent_classes_reinserted_as_zeros():
    maps = torch.rand(2, 4, 5)
    full = insert_absent(maps, torch.tensor([True, False, True]))
    assert full.shape == (3, 4, 5)
    assert torch.equal(full[1], torch.zeros(4, 5))
    assert torch.equal(full[0], maps[0]) and torch.equal(full[2], maps[1])


def test_sigma_table_is_the_papers():
    assert PAPER_SIGMA == {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}
    assert sorted(NOISY_TRAINING_SIGMAS) == [0, 0, 0, 0.05, 0.08, 0.13, 0.22, 0.36, 0.6]
    assert NOISY_TRAINING_SIGMAS.count(0.0) / len(NOISY_TRAINING_SIGMAS) == pytest.approx(1 / 3)


def test_cfg_scales():
    net = SemanticUNet(TINY).eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)  # zero-init output would make every ε equal
    x, t = torch.randn(2, 3, 16, 32), torch.tensor([10, 500])
    s = scene_set(16, 32, 2, seed=1)
    seg = condition(s.labels, s.instances, NUM_CLASSES)
    with torch.no_grad():
        cond, uncond = net(x, t, seg), net(x, t, torch.zeros_like(seg))
        assert not torch.allclose(cond, uncond)
        torch.testing.assert_close(guided_eps(net, x, t, seg, 1.0), cond, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(guided_eps(net, x, t, seg, 0.0), uncond, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(guided_eps(net, x, t, seg, 2.0), 2 * cond - uncond, atol=1e-5, rtol=1e-4)


def test_condition_one_hot_and_edges():
    lab = torch.tensor([[[0, 0, 1], [255, 1, 1]]])
    inst = torch.tensor([[[0, 0, 5], [0, 5, 6]]])
    c = condition(lab, inst, 2)
    assert c.shape == (1, 3, 2, 3)
    assert torch.equal(c[0, 0], torch.tensor([[1.0, 1, 0], [0, 0, 0]]))  # 255: no class
    assert torch.equal(c[0, 1], torch.tensor([[0.0, 0, 1], [0, 1, 1]]))
    assert c[0, 2, 1, 2] == 1 and c[0, 2, 0, 0] == 0  # 5|6 boundary is an edge; the 0-0 interior is not
    assert present_classes(lab, 2).tolist() == [[True, True]]


# ----------------------------------------------------------------------------- mIoU
def test_miou_known_answers():
    from linksim.metrics.miou import per_image_iou

    ref = torch.tensor([[[0, 0], [1, 1]]])
    assert torch.nanmean(per_image_iou(ref, ref, 3)).item() == 1.0
    pred = torch.tensor([[[0, 1], [1, 1]]])
    # class 0: |{(0,0)}| / |{(0,0),(0,1)}| = 1/2; class 1: 2/3; class 2 absent from both
    iou = per_image_iou(pred, ref, 3)[0]
    assert iou[0].item() == pytest.approx(0.5) and iou[1].item() == pytest.approx(2 / 3) and math.isnan(iou[2])
    assert torch.nanmean(iou).item() == pytest.approx(7 / 12)
    # pooled confusion gives the same on one image; 255 pixels are ignored
    ref255 = torch.tensor([[[0, 0], [1, 255]]])
    m, per = miou_from_confusion(confusion(pred, ref255, 3))
    assert per[0].item() == pytest.approx(0.5) and per[1].item() == pytest.approx(1 / 2) and m == pytest.approx(0.5)


# ----------------------------------------------------------------------------- accounting
@pytest.fixture
def tiny_model(tmp_path):
    return str(export_gesco(SemanticUNet(TINY), tmp_path / "tiny.safetensors", {}))


def _method(model, transmit, cbr, csnr=10.0, **kw):
    from linksim.codecs.gesco.method import GescoMethod, GescoSettings

    cfg = GescoSettings(transmit=transmit, model=model, num_steps=2, **kw)
    point = OperatingPoint(csnr_db=csnr, cbr=cbr, link=LinkConfig(kind="awgn"), image_shape=(32, 64), seed=0)
    cfg.check_point(point)
    return GescoMethod(cfg, point)


def test_analog_channel_uses(tiny_model):
    m = _method(tiny_model, "analog", Fraction(1, 24))
    n = 3 * 32 * 64 // 24
    s = scene_set(32, 64, 3, seed=0)
    tx = m.encode(s.images, torch.Generator().manual_seed(0), side={"labels": s.labels, "instances": s.instances})
    assert tx.x.shape == (3, n) and m.grid().num_data == n
    k, r = NUM_CLASSES, 4
    for i in range(3):
        p = int(present_classes(s.labels[i:i + 1], k).sum())
        f = int(tx.meta["pool"][i])
        pooled = (p + 1) * math.ceil(32 / f) * math.ceil(64 / f)  # maps of present classes + edge map
        assert int(tx.meta["map_symbols"][i]) == math.ceil((pooled + k * r) / 2) <= n
        finer = (p + 1) * math.ceil(32 / (f - 1)) * math.ceil(64 / (f - 1)) if f > 1 else None
        assert finer is None or math.ceil((finer + k * r) / 2) > n  # f is the finest pooling that fits
        assert torch.count_nonzero(tx.x[i]) <= int(tx.meta["map_symbols"][i])  # the rest is silent
    # high CSNR: the side information arrives and the maps are the pooled ones
    rx = m.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    cond, extras, outage = m.receive(rx)
    assert bool(extras["side_ok"].all()) and not bool(outage.any())
    assert cond.shape == (3, k + 1, 32, 64)


def test_digital_channel_uses_and_lossless(tiny_model):
    m = _method(tiny_model, "digital", Fraction(1, 3), csnr=30.0, modulation="16qam", code_rate=0.5)
    n = 3 * 32 * 64 // 3
    s = scene_set(32, 64, 2, seed=0)
    tx = m.encode(s.images, torch.Generator().manual_seed(0), side={"labels": s.labels, "instances": s.instances})
    lay = m.layout
    assert tx.meta["map_symbols"] == lay.num_codewords * lay.n // lay.bits_per_symbol <= n
    assert m.grid().num_data == n
    assert bool((tx.payload_bits <= m.capacity_bits).all()) and tx.meta["downsample"].tolist() == [1, 1]
    rx = m.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    cond, extras, outage = m.receive(rx)
    assert not bool(outage.any()) and bool(extras["crc_ok"].all())
    torch.testing.assert_close(cond, condition(s.labels, s.instances, NUM_CLASSES))  # exact maps


def test_digital_shows_an_fds_trained_model_fds_maps(tmp_path):
    """A model trained on FDS-processed maps (``fds_training`` in its .json, as the shipped
    receiver) only ever saw FDS outputs, so the exact digital map reaches it FDS-processed
    (absent slots still zero); ``fds: false`` gives it the exact map."""
    import torch.nn.functional as F

    path = str(export_gesco(SemanticUNet(TINY), tmp_path / "fds.safetensors", {"train_config": {"fds_training": True}}))
    s = scene_set(32, 64, 2, seed=0)
    exact = condition(s.labels, s.instances, NUM_CLASSES)
    # FDS written out here: 3x3 mean then 3x3 max, stride 1, edge-replicated borders
    pad = lambda t: F.pad(t, (1, 1, 1, 1), mode="replicate")  # noqa: E731
    want = F.max_pool2d(pad(F.avg_pool2d(pad(exact), 3, stride=1)), 3, stride=1)
    want[:, :NUM_CLASSES] *= present_classes(s.labels, NUM_CLASSES)[:, :, None, None].float()
    for fds_on, expected in ((True, want), (False, exact)):
        m = _method(path, "digital", Fraction(1, 3), csnr=30.0, modulation="16qam", code_rate=0.5, fds=fds_on)
        tx = m.encode(s.images, torch.Generator().manual_seed(0), side={"labels": s.labels, "instances": s.instances})
        cond, _, outage = m.receive(m.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)))
        assert not bool(outage.any())
        torch.testing.assert_close(cond, expected)


def test_digital_undecodable_gives_unconditional(tiny_model):
    m = _method(tiny_model, "digital", Fraction(1, 24), csnr=-10.0, modulation="64qam", code_rate=0.9)
    s = scene_set(32, 64, 1, seed=0)
    tx = m.encode(s.images, torch.Generator().manual_seed(0), side={"labels": s.labels, "instances": s.instances})
    cond, extras, outage = m.receive(m.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)))
    assert bool(outage.all()) and not bool(extras["crc_ok"].any())
    assert torch.count_nonzero(cond) == 0  # the all-zero (unconditional) condition


def test_paper_mode_checks_keys(tiny_model):
    with pytest.raises(ValueError, match="PSNR key"):
        _method(tiny_model, "paper", Fraction(1, 24), csnr=12.0)
    m = _method(tiny_model, "paper", Fraction(1, 24), csnr=1.0)
    s = scene_set(32, 64, 1, seed=0)
    tx = m.encode(s.images, None, side={"labels": s.labels, "instances": s.instances})
    cond, extras, _ = m.receive(m.channel(tx, torch.Generator(), torch.Generator().manual_seed(0)))
    absent = ~present_classes(s.labels, NUM_CLASSES)[0]
    assert torch.count_nonzero(cond[0, :NUM_CLASSES][absent]) == 0 and extras["cbr_defined"] is False


# ----------------------------------------------------------------------------- loaders
def _png(path, arr, mode=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)


def _cityscapes(root, stems, extra_image=None):
    for s in stems:
        _png(root / "leftImg8bit/val/x" / f"{s}_leftImg8bit.png", np.full((16, 32, 3), 100, np.uint8))
        lab = np.full((16, 32), 7, np.uint8)  # road
        lab[:, 16:] = 26  # car
        _png(root / "gtFine/val/x" / f"{s}_gtFine_labelIds.png", lab)
        inst = np.full((16, 32), 7, np.uint16)
        inst[:, 16:24], inst[:, 24:] = 26001, 26002  # two cars: ids above 255
        _png(root / "gtFine/val/x" / f"{s}_gtFine_instanceIds.png", inst)
    if extra_image:
        _png(root / "leftImg8bit/val/x" / f"{extra_image}_leftImg8bit.png", np.zeros((16, 32, 3), np.uint8))


def test_cityscapes_16bit_instances_survive(tmp_path):
    _cityscapes(tmp_path, ["a_000001"])
    s = load_labelled("cityscapes", (16, 32), folder=tmp_path)
    assert s.names == ["a_000001"]
    assert set(s.instances.unique().tolist()) == {7, 26001, 26002}
    assert set(s.labels.unique().tolist()) == {0, 13}  # train ids of road and car


def test_mismatched_folders_refused(tmp_path):
    _cityscapes(tmp_path, ["a_000001"], extra_image="b_000002")
    with pytest.raises(PairingError, match="without labels"):
        load_labelled("cityscapes", (16, 32), folder=tmp_path)
    from linksim.data import load_images
    from linksim.errors import DataError

    with pytest.raises(DataError) as err:
        load_images("cityscapes", folder=tmp_path, size=[16, 32])
    assert "\n" not in str(err.value) and "b_000002" in str(err.value)


def test_coco_stuff_pairs_by_stem(tmp_path):
    _png(tmp_path / "images/000000000139.png", np.zeros((20, 20, 3), np.uint8))
    lab = np.full((20, 20), 255, np.uint8)
    lab[:10] = 3
    _png(tmp_path / "labels/000000000139.png", lab)
    s = load_labelled("coco_stuff", (20, 20), folder=tmp_path)
    assert set(s.labels.unique().tolist()) == {3, 255}
    _png(tmp_path / "labels/000000000285.png", lab)
    with pytest.raises(PairingError, match="without an image"):
        load_labelled("coco_stuff", (20, 20), folder=tmp_path)
