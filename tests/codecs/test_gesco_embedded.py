"""The shipped GESCO models: the receiver uses its condition; robustness to the paper's noise.

Scenes of seed 7 (the models trained on seed 101; the scenario evaluates seed 0). Few DDIM steps
(10) keep the tests to seconds; the benchmark (benchmarks/gesco_ablation.py) uses 25.
"""

from __future__ import annotations

import pytest
import torch

from linksim.codecs.gesco.evaluation import paper_miou, score
from linksim.codecs.gesco.method import EMBEDDED_MODELS
from linksim.codecs.gesco.scenes import scene_set
from linksim.codecs.gesco.segmenter import load_segmenter

pytestmark = pytest.mark.skipif(not EMBEDDED_MODELS["embedded"].is_file(), reason="embedded GESCO weights not built")
STEPS = 10


@pytest.mark.parametrize("model", ["embedded", "embedded_noisy", "embedded_clean", "embedded_fds"])
def test_receiver_uses_its_condition(model):
    if not EMBEDDED_MODELS[model].is_file():
        pytest.skip(f"{model} not shipped")
    s = scene_set(32, 64, 2, seed=7)
    seg = load_segmenter()
    gen = paper_miou(s, 100, model=model, num_steps=STEPS, segmenter=seg).images  # clean maps
    # m[i][j]: the scene generated from map i, scored against map j
    m = [[float(score(gen[i:i + 1], s.labels[j:j + 1], seg)) for j in range(2)] for i in range(2)]
    assert m[0][0] > m[0][1] and m[1][1] > m[1][0]
    # send the maps swapped: the winner swaps with them
    swapped = paper_miou(s, 100, model=model, num_steps=STEPS, segmenter=seg, labels=s.labels.flip(0)).images
    w = [[float(score(swapped[i:i + 1], s.labels[j:j + 1], seg)) for j in range(2)] for i in range(2)]
    assert w[0][1] > w[0][0] and w[1][0] > w[1][1]


def test_robustness_trend_paper_mode():
    """The issue's robustness trend: the receiver (``embedded``: FDS + noisy training, FDS inside
    training) keeps >= 0.8x of its clean-map mIoU at PSNR 1 (σ = 0.9); the clean-trained model
    without FDS keeps far less. Measured here: 0.59 vs 0.73 (0.81x), plain 0.19. The margin is thin:
    on training scenes the same model gives 0.77x and 0.82x on two slices of 16
    (configs/gesco_receiver.yaml), so this pins the shipped weights, not a law of the method."""
    s = scene_set(32, 64, 8, seed=7)
    seg = load_segmenter()
    clean = paper_miou(s, 100, num_steps=STEPS, segmenter=seg).miou.mean()
    noisy = paper_miou(s, 1, num_steps=STEPS, segmenter=seg).miou.mean()
    assert noisy >= 0.8 * clean, (float(noisy), float(clean))
    if not EMBEDDED_MODELS["embedded_clean"].is_file():
        pytest.skip("the clean-trained ablation model (embedded_clean) is not shipped")
    plain = paper_miou(s, 1, model="embedded_clean", fds=False, num_steps=STEPS, segmenter=seg).miou.mean()
    assert plain < noisy, (float(plain), float(noisy))
    assert torch.isfinite(torch.stack([clean, noisy, plain])).all()


@pytest.mark.skipif(not EMBEDDED_MODELS["embedded_clean"].is_file(), reason="embedded_clean not shipped")
def test_noisy_training_buys_robustness_to_map_noise():
    """The paper's noisy training is what keeps semantics at PSNR 1 (σ = 0.9 on the maps): the
    noisy-trained model beats the clean-trained one (same architecture, seed and 1000 steps; FDS off
    for both, as FDS lowers mIoU on these models). Ablation on seed 0: 0.48 vs 0.18; the bar here
    (0.1 absolute on 8 scenes of seed 7) is well inside that gap and above the seed-to-seed spread."""
    s = scene_set(32, 64, 8, seed=7)
    seg = load_segmenter()
    noisy = paper_miou(s, 1, model="embedded_noisy", fds=False, num_steps=STEPS, segmenter=seg).miou.mean()
    clean = paper_miou(s, 1, model="embedded_clean", fds=False, num_steps=STEPS, segmenter=seg).miou.mean()
    assert noisy > clean + 0.1, (float(noisy), float(clean))


@pytest.mark.skipif(not EMBEDDED_MODELS["embedded_fds"].is_file(), reason="embedded_fds not shipped")
def test_fds_inside_training_removes_the_mismatch():
    """FDS at the receiver hurts a model that never saw FDS-processed maps; trained on them
    (``fds_training``, otherwise the same seed, data and 1000 steps) the same receiver keeps more
    semantics at PSNR 1. Ablation on seed 0: 0.51 vs 0.36; measured on these 8 scenes of seed 7:
    0.50 vs 0.35; the bar (0.08) is half that gap."""
    s = scene_set(32, 64, 8, seed=7)
    seg = load_segmenter()
    fds_trained = paper_miou(s, 1, model="embedded_fds", fds=True, num_steps=STEPS, segmenter=seg).miou.mean()
    fds_at_rx_only = paper_miou(s, 1, model="embedded_noisy", fds=True, num_steps=STEPS, segmenter=seg).miou.mean()
    assert fds_trained > fds_at_rx_only + 0.08, (float(fds_trained), float(fds_at_rx_only))
