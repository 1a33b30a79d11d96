"""docs/scenario.md is generated from the models and the registry and documents every key and column."""

from __future__ import annotations

from linksim.docs import DOC_PATH, RESULTS_COLUMNS, _builtin_names, scenario_reference
from linksim.registry import CHANNELS, METHODS, METRICS


def test_scenario_reference_is_up_to_date():
    assert DOC_PATH.read_text() == scenario_reference(), "docs/scenario.md is out of date: run python -m linksim.docs"


def test_every_key_kind_and_metric_is_documented_with_a_meaning():
    text = scenario_reference()
    for registry in (CHANNELS, METHODS):
        for name in _builtin_names(registry):
            assert f"### `kind: {name}`" in text
            for key in registry.config(name).model_fields:
                if key in ("kind", "name"):
                    continue
                section = text.split(f"### `kind: {name}`")[1].split("\n### ")[0]
                line = next(ln for ln in section.splitlines() if ln.startswith(f"| `{key}` |"))
                assert not line.rstrip().endswith("|  |"), f"{name}.{key} has no meaning: {line}"
    for name in _builtin_names(METRICS):
        assert f"| `{name}` |" in text
    for key in ("limit", "size", "draws", "tdl_model", "delay_spread", "subcarriers", "crc_failure",
                "use_no_eff", "ldpc_iterations"):
        assert f"| `{key}` |" in text


def test_every_results_column_is_documented():
    from linksim.store import IMAGE_COLUMNS, TIMING_COLUMNS
    from linksim.studies import PHY_COLUMNS

    extra = [c for n in _builtin_names(METHODS) for c in getattr(METHODS.get(n), "extra_columns", ())]
    missing = [c for c in IMAGE_COLUMNS + TIMING_COLUMNS + PHY_COLUMNS + extra if c not in RESULTS_COLUMNS]
    assert not missing
