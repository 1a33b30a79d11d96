"""``linksim train jscc CONFIG``: runs a (tiny) training through the CLI; config errors are exit 2."""

from __future__ import annotations

import numpy as np
import yaml
from PIL import Image

from linksim.cli import main


def _config(tmp_path, **over):
    root = tmp_path / "imgs"
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    cfg = {
        "name": "tiny", "seed": 0, "steps": 3, "batch_size": 2, "checkpoint_every": 2, "device": "cpu",
        "eval_csnr_db": [0, 10], "eval_repeats": 1,
        "data": {"source": "folder", "folder": str(root), "crop": 8, "scales": [1.0], "holdout": ["img2"],
                 "eval_size": 8},
        "model": {"channels": 2, "filters": 8},
        "channel": {"kind": "awgn", "csnr_db": [0, 14]},
        "optim": {"lr": 0.01, "schedule": "cosine"},
        **over,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_jscc_writes_weights_and_resumes(tmp_path):
    cfg = _config(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "jscc", str(cfg), "--output", str(out), "--stop-at", "2"]) == 0
    assert (out / "checkpoint.pt").is_file() and not (out / "model.safetensors").exists()
    assert main(["train", "jscc", str(cfg), "--output", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "eval.csv").is_file()


def test_train_config_error_is_one_line_exit_2(tmp_path, capsys):
    cfg = _config(tmp_path, bogus=1)
    assert main(["train", "jscc", str(cfg), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and str(cfg) in err[0]
