"""ToolBench end to end on the embedded cluster: SFT of the tiny model on synthetic trajectories
through algo=sft, its checkpoint reloaded with from_pretrained, then mode=eval: DFSDT over the
virtual API server on StableToolBench queries, judged; a second run finds every query answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_cfg

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def sft_checkpoint(tmp_path_factory, model_cache):
    """The README's ``task=toolbench algo=sft`` (shortened: 4 steps, 400 trajectories), run through
    the command line's entry on the session's cluster."""
    import ray

    from tests.readme_commands import TOOLBENCH_SFT, run_here, shortened

    out = tmp_path_factory.mktemp("toolbench") / "sft"
    metrics, _ = run_here(shortened(TOOLBENCH_SFT, out, model_cache, steps=4))
    assert ray.is_initialized()
    return metrics, out


def test_sft_runs_and_its_checkpoint_loads_with_from_pretrained(sft_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    metrics, out = sft_checkpoint
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["sft/loss"] for r in rows if "sft/loss" in r]
    assert len(losses) == 4 and losses[-1] < losses[0]
    final = [r for r in rows if "eval/action_right" in r][-1]
    assert {"eval/parses", "eval/arguments_json", "eval/loss"} <= set(final)
    model = AutoModelForCausalLM.from_pretrained(Path(metrics["checkpoint"]) / "model")
    tokenizer = AutoTokenizer.from_pretrained(Path(metrics["checkpoint"]) / "model")
    assert model.config.vocab_size >= len(tokenizer) > 1000  # the BPE tokenizer trained on the tool text


def test_dfsdt_evaluation_of_the_checkpoint_is_deterministic_and_resumable(sft_checkpoint, tmp_path):
    from orchestrator.launch.evaluation import run_evaluation

    metrics, _ = sft_checkpoint
    model = str(Path(metrics["checkpoint"]) / "model")
    overrides = ["task=toolbench", "mode=eval", "infer=dfsdt", "model=local", f"model.pretrained={model}",
                 "task.spec.num_queries=4", "infer.max_query_count=12", "logger=none"]
    first = run_evaluation(make_cfg([*overrides, f"output_dir={tmp_path}/first"]))
    answers = sorted((tmp_path / "first" / "answers").rglob("*.json"))
    assert len(answers) == 4
    sopr = {k: v for k, v in first.items() if k.startswith("toolbench/sopr/") and k.endswith("/value")}
    assert any(k.startswith("eval/source/") for k in first) and sopr  # per query group (G1_instruction)
    second = run_evaluation(make_cfg([*overrides, f"output_dir={tmp_path}/second"]))
    again = sorted((tmp_path / "second" / "answers").rglob("*.json"))
    assert [a.read_bytes() for a in answers] == [b.read_bytes() for b in again]  # the same outputs
    assert {k: second[k] for k in sopr} == sopr
    rerun = run_evaluation(make_cfg([*overrides, f"output_dir={tmp_path}/first"]))  # every query already answered
    assert rerun["eval/skipped"] == 4 and rerun["eval/searched"] == 0
