"""The GPU and cluster paths, tested on a CPU by their mechanisms: the device of the draws, the
process group's backends, the positions the lean decoder is fed, what the cluster (not the
driver) has, where checkpoints go and load, master weights under bf16, dropout in the update,
distinct protocol markers, one KL coefficient on every rank, metrics reduced as sums, and W&B
rows that a restart cannot contradict. ``pytest -m gpu`` (tests/test_gpu.py) runs them on CUDA."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from orchestrator.config.checks import ConfigError
from orchestrator.rollout.episode import Episode
from orchestrator.rollout.sampler import SamplingParams, TurnSampler, _draw
from tests.conftest import make_algo_cfg, make_cfg, make_setup
from tests.dist_worker import two_rank_kl


# ---------------------------------------------------------------- 1. draws on the generator's device


def test_draws_come_from_the_generators_device_and_move_to_the_logits(monkeypatch):
    """A CPU generator cannot fill a CUDA tensor: the uniforms are drawn where the generator lives."""
    seen = []
    real_rand = torch.rand

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        return real_rand(*args, **kwargs)

    monkeypatch.setattr(torch, "rand", spy)
    gen = torch.Generator(device="cpu").manual_seed(0)
    # Logits on another device than the generator's ("meta" stands in for "cuda" on a CPU machine).
    tokens = _draw(torch.randn(3, 11, device="meta"), SamplingParams(temperature=1.0), gen)
    assert seen == [gen.device] and tokens.device.type == "meta"
    # and on one device the same seed draws the same tokens as before
    a = _draw(torch.randn(3, 11, generator=torch.Generator().manual_seed(1)), SamplingParams(1.0),
              torch.Generator().manual_seed(0))
    b = _draw(torch.randn(3, 11, generator=torch.Generator().manual_seed(1)), SamplingParams(1.0),
              torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- 5. the lean decoder's positions


def test_lean_gpt2_never_feeds_a_position_past_its_table():
    """The issue's reproduction: n_positions=16, one row at 15 tokens with budget 1, four rows with
    budget 12. The finished row stays in the lean batch and used to be fed at position 16."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0)).eval()
    sequences = [list(range(1, 16))] + [[1, 2, 3] for _ in range(4)]
    budgets = [1, 12, 12, 12, 12]
    outs = {}
    for lean in (False, True):
        sampler = TurnSampler(model, {39}, 0, SamplingParams(temperature=1.0), torch.Generator().manual_seed(3), lean=lean)
        outs[lean] = sampler.sample(sequences, budgets)
    assert outs[True] == outs[False]  # the same draws either way, and no IndexError
    assert len(outs[True][0]) == 1 and all(1 <= len(o) <= 12 for o in outs[True][1:])


# ---------------------------------------------------------------- 2. one process group for CPU and CUDA tensors


def test_gpu_workers_get_a_process_group_for_cpu_and_cuda_tensors():
    from orchestrator.launch.train_run import process_group_backend

    assert process_group_backend(True) == "cpu:gloo,cuda:nccl"  # metrics (CPU float64) over gloo, grads over NCCL
    assert process_group_backend(False) == "gloo"


def test_the_kl_coefficient_is_the_same_on_every_rank(tmp_path):
    """Ranks see different KLs; the controller adapts on their sum, so beta stays identical (a
    gloo group of two processes, as Ray Train makes on CPUs)."""
    import multiprocessing
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [multiprocessing.get_context("spawn").Process(target=two_rank_kl, args=(r, port, kls, str(tmp_path)))
             for r, kls in ((0, [3.0, 0.5, 2.0]), (1, [0.1, 4.0, 0.2]))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    (beta0, total0, spread0), (beta1, total1, _) = (
        [float(x) for x in (tmp_path / f"rank{r}.txt").read_text().split()] for r in (0, 1))
    assert beta0 == beta1 != 0.2 and total0 == total1 == 1.0 and spread0 == 0.0


def test_ppo_adapts_beta_on_the_global_kl(monkeypatch):
    """The PPO update itself reduces KL sum and episode count over ranks before adapting."""
    import orchestrator.algos.ppo as ppo

    calls = []

    def fake_all_sum(values):
        calls.append(list(values))
        return [values[0] * 2, values[1] * 2]  # a second rank with the same share

    monkeypatch.setattr(ppo, "all_sum", fake_all_sum)
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    algo = ppo.PPO(make_algo_cfg("ppo", ppo_epochs=1, minibatch_size=None), make_setup(lm, minibatch_size=2))
    ep = Episode.from_prompt([1, 2], "p")
    ep.add("model", [3, 4, 5], "m")
    algo.update(algo.prepare([ep, copy.deepcopy(ep)]), 0)
    assert calls and calls[-1][1] == 2.0  # this rank's 2 episodes; the controller saw 4


# ---------------------------------------------------------------- 3./4. the cluster, not the driver


def test_gpu_runs_are_checked_against_the_clusters_gpus():
    from orchestrator.launch.ray_cluster import check_cluster

    trainer = make_cfg(["trainer.use_gpu=true", "trainer.num_workers=2", "ray.address=auto"]).trainer
    with pytest.raises(ConfigError, match="has 0 GPU"):
        check_cluster(trainer, "/shared/out", resources={"CPU": 8}, nodes=[{"Alive": True}])
    check_cluster(trainer, "/shared/out", resources={"CPU": 8, "GPU": 2}, nodes=[{"Alive": True}])


def test_a_local_storage_path_on_several_nodes_is_refused_with_the_fix(monkeypatch):
    from orchestrator.launch.ray_cluster import check_cluster

    monkeypatch.delenv("TOOLRL_SHARED_STORAGE", raising=False)
    trainer = make_cfg([]).trainer
    nodes = [{"Alive": True, "NodeManagerAddress": "10.0.0.1"}, {"Alive": True, "NodeManagerAddress": "10.0.0.2"}]
    with pytest.raises(ConfigError, match="local path, but the Ray cluster spans 2 machines.*s3://"):
        check_cluster(trainer, "/home/me/outputs/run/ray", resources={"CPU": 4}, nodes=nodes)
    check_cluster(trainer, "s3://bucket/run/ray", resources={"CPU": 4}, nodes=nodes)
    check_cluster(trainer, "/home/me/outputs/run/ray", resources={"CPU": 4}, nodes=nodes[:1])
    one_machine = [{"Alive": True, "NodeManagerAddress": "10.0.0.1"}] * 3  # nodes of one host share its disk
    check_cluster(trainer, "/home/me/outputs/run/ray", resources={"CPU": 4}, nodes=one_machine)
    monkeypatch.setenv("TOOLRL_SHARED_STORAGE", "1")  # an NFS mount, said so
    check_cluster(trainer, "/mnt/nfs/run/ray", resources={"CPU": 4}, nodes=nodes)


# ---------------------------------------------------------------- 6. checkpoints load onto the CPU


def test_checkpoint_state_loads_onto_the_cpu(tmp_path, monkeypatch):
    from orchestrator.worker import checkpoint

    state = checkpoint.TrainState(3, "abc", {"optimizer": {"t": torch.ones(2)}}, checkpoint.rng_states(), {})
    torch.save({"step": 3, "run_id": "abc", "algo": state.algo, "rng": state.rng, "metrics": {}}, tmp_path / "state.pt")
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = checkpoint.load_state(tmp_path)
    assert seen.get("map_location") == "cpu" and loaded.step == 3  # a GPU checkpoint resumes on a CPU


# ---------------------------------------------------------------- 7. bf16: the weights still move


def test_a_bf16_configured_model_trains_float32_master_weights():
    """model.dtype=bfloat16 is the forward's autocast dtype; the optimizer updates float32 weights,
    so a 1e-5 step is not rounded away (in bf16 weights it mostly is)."""
    from orchestrator.algos.sft import SFT

    def moved_share(lm, compute_dtype):
        before = [p.detach().clone() for p in lm.parameters()]
        algo = SFT(make_algo_cfg("sft", lr=1e-5, warmup_steps=0, lr_schedule="constant"),
                   make_setup(lm, compute_dtype=compute_dtype))
        ep = Episode.from_prompt([1, 2], "p")
        ep.add("model", [3, 4, 5, 6, 7], "m")
        algo.update(algo.prepare([ep, copy.deepcopy(ep)]), 0)
        changed = sum(int((a != b).sum()) for a, b in zip(before, lm.parameters()))
        return changed / sum(p.numel() for p in before)

    torch.manual_seed(0)
    fp32 = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=32, n_layer=1, n_head=2))
    bf16_weights = copy.deepcopy(fp32).to(torch.bfloat16)
    assert next(fp32.parameters()).dtype == torch.float32
    assert moved_share(fp32, torch.bfloat16) > 0.9
    assert moved_share(bf16_weights, None) < 0.5  # the failure the float32 master copy prevents
    from orchestrator.models.loading import compute_dtype

    assert compute_dtype("bfloat16") == torch.bfloat16 and compute_dtype("float32") is None


# ---------------------------------------------------------------- 8. no dropout in the update


def test_the_ratio_is_exactly_one_before_the_first_step_on_a_starcoder_shaped_model():
    """GPTBigCode reads attention dropout as a float: disable_dropout must zero it too, or the
    update's log-probs are noisy against the old ones scored in eval mode."""
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    from orchestrator.algos.ppo import PPO

    torch.manual_seed(0)
    lm = GPTBigCodeForCausalLM(GPTBigCodeConfig(vocab_size=30, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                                attn_pdrop=0.5, resid_pdrop=0.5, embd_pdrop=0.5, multi_query=True))
    algo = PPO(make_algo_cfg("ppo", ppo_epochs=1, minibatch_size=None, lr=1e-9), make_setup(lm, minibatch_size=8))
    episodes = []
    for i in range(4):
        ep = Episode.from_prompt([1, 2, 3], "p")
        ep.add("model", [4 + i, 5, 6, 7 + i], "m")
        ep.reward = float(i % 2)
        episodes.append(ep)
    metrics = algo.update(algo.prepare(episodes), 0)
    assert metrics["ppo/policy/approxkl"] == 0.0 and metrics["ppo/policy/clipfrac"] == 0.0


# ---------------------------------------------------------------- 9. distinct protocol markers


def test_protocol_markers_start_from_their_own_pieces_not_one_mean():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from orchestrator.models.tokens import add_protocol_tokens
    from orchestrator.rollout.protocol import PROTOCOL_TOKENS

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(["request call response submit <tag> text"] * 20,
                             trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<eos>"],
                                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", unk_token="<unk>")
    pieces = {m: tok(m, add_special_tokens=False)["input_ids"] for m in PROTOCOL_TOKENS}
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=16, n_embd=16, n_layer=1, n_head=2))
    old = model.get_input_embeddings().weight.detach().clone()
    add_protocol_tokens(tok, model)
    rows = model.get_input_embeddings().weight.detach()
    new = [rows[tok.convert_tokens_to_ids(m)] for m in PROTOCOL_TOKENS]
    for marker, row in zip(PROTOCOL_TOKENS, new):
        assert torch.allclose(row, old[pieces[marker]].mean(0))
    gaps = [float((a - b).norm()) for i, a in enumerate(new) for b in new[i + 1:]]
    assert min(gaps) > 1e-3, gaps  # mean-resizing made them ~5e-6 apart


# ---------------------------------------------------------------- 12. metrics over workers are sums


def test_episode_metrics_of_two_workers_equal_those_of_the_whole_batch():
    from orchestrator.rollout.environment import episode_metrics, episode_stats, stats_to_metrics

    episodes = []
    for i, (reward, calls, errors) in enumerate([(1, 1, 0), (0, 2, 2), (1, 1, 1), (0, 0, 0), (1, 3, 0)]):
        ep = Episode.from_prompt([1], "p")
        ep.add("model", [2] * (i + 1), "m")
        ep.reward, ep.num_calls, ep.num_tool_errors = float(reward), calls, errors
        ep.end_reason = "max_new_tokens" if i == 3 else "submitted"
        episodes.append(ep)
    halves = [episode_stats(episodes[:2]), episode_stats(episodes[2:])]
    summed = stats_to_metrics({k: halves[0][k] + halves[1][k] for k in halves[0]})
    whole = episode_metrics(episodes)
    assert summed == pytest.approx(whole)
    rewards = torch.tensor([1.0, 0, 1, 0, 1])
    assert whole["env/reward_std"] == pytest.approx(rewards.std().item())
    assert whole["tools/error_frac"] == pytest.approx(3 / 7)  # errors over calls, not a mean of ratios
    assert whole["env/truncated_frac"] == pytest.approx(1 / 5)  # a turn cut by max_new_tokens is a truncation


# ---------------------------------------------------------------- 11. W&B rows a restart cannot contradict


class FakeRun:
    def __init__(self, history):
        self.history = history
        self.summary = {}

    def log(self, metrics, step):
        assert not self.history or step > self.history[-1][0], "W&B refuses steps that go backwards"
        self.history.append((step, metrics))

    def finish(self):
        pass


def test_wandb_gets_only_rows_a_checkpoint_covers(tmp_path):
    """A killed attempt logged steps 1-3 after its step-2 checkpoint; the restart redoes step 3.
    W&B must end with each step once, the restart's values, as metrics.jsonl does."""
    import json

    from orchestrator.tracking.tracker import Tracker

    logger = make_cfg(["logger=none"]).logger
    history: list = []
    first = Tracker(logger, tmp_path, "id", "run", "group", {})
    first.run = FakeRun(history)
    for step in (1, 2):
        first.log({"x": step}, step)
    first.commit()  # the step-2 checkpoint
    first.log({"x": 30.0}, 3)  # then the worker dies: no commit, no finish
    second = Tracker(logger, tmp_path, "id", "run", "group", {})
    second.run = FakeRun(history)
    second.rewind(2)
    for step in (3, 4):
        second.log({"x": float(step)}, step)
    second.finish()
    assert [s for s, _ in history] == [1, 2, 3, 4] and history[2][1] == {"x": 3.0}
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["x"]) for r in rows] == [(1, 1), (2, 2), (3, 3.0), (4, 4.0)]
