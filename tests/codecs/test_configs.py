"""``linksim.codecs.configs``: the training configs share one strict run model."""

from pathlib import Path

import pydantic
import pytest

from linksim.codecs.configs import TrainRunConfig, load_config
from linksim.codecs.diffusion.training import TrainPriorConfig
from linksim.codecs.jscc.training import TrainJSCCConfig

RUN_FIELDS = ["name", "seed", "steps", "batch_size", "checkpoint_every", "device", "amp", "num_threads", "output"]
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_run_fields_come_from_the_base_with_own_defaults():
    for cls in (TrainJSCCConfig, TrainPriorConfig):
        assert issubclass(cls, TrainRunConfig)
        assert list(cls.model_fields)[: len(RUN_FIELDS)] == RUN_FIELDS
    j, p = TrainJSCCConfig(), TrainPriorConfig()
    assert (j.name, j.steps, j.batch_size, j.checkpoint_every) == ("adjscc", 1000, 32, 100)
    assert (p.name, p.steps, p.batch_size, p.checkpoint_every) == ("prior", 50000, 128, 1000)
    for c in (j, p):
        assert (c.seed, c.device, c.amp, c.num_threads, c.output) == (0, "auto", True, None, None)


@pytest.mark.parametrize("cls", [TrainJSCCConfig, TrainPriorConfig])
def test_overridden_defaults_keep_bounds_and_strictness(cls):
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1"):
        cls(steps=0)
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1"):
        cls(checkpoint_every=0)
    with pytest.raises(pydantic.ValidationError, match="stpes"):
        load_config(cls, {"stpes": 10})
    with pytest.raises(pydantic.ValidationError, match="device"):
        cls(device="tpu")


def test_repository_configs_load():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert {f.stem.split("_")[0] for f in files} >= {"jscc", "prior"}
    from linksim.codecs.gesco.training import TrainGescoConfig, TrainSegmenterConfig

    from linksim.codecs.lrisc.training import TrainLRISCConfig

    models = {"prior": TrainPriorConfig, "gesco": TrainGescoConfig, "segmenter": TrainSegmenterConfig,
              "lrisc": TrainLRISCConfig}
    for f in files:
        from linksim.codecs.diffjscc.training import TrainDiffJSCCConfig

        model = (TrainDiffJSCCConfig if f.stem == "diffjscc_embedded" else
                 models.get(f.stem.split("_")[0], TrainJSCCConfig))  # diffjscc stage 1: JSCC
        cfg = load_config(model, f)
        assert cfg.name == f.stem
