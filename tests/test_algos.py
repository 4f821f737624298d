"""GRPO and SFT against values computed by hand, the one interface, and demonstrations tokenized
by character offsets (a byte-level and a BPE tokenizer)."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from orchestrator.algos import ALGORITHMS, Algorithm
from orchestrator.algos.batch import logprobs_of
from orchestrator.algos.grpo import GRPO, aggregate, group_advantages, k3_kl
from orchestrator.algos.schedule import linear_anneal, warmup_cosine
from orchestrator.algos.sft import SFT
from orchestrator.rollout.demonstration import to_episode, to_episodes
from orchestrator.rollout.episode import Episode
from tests.conftest import make_algo_cfg, make_setup


def tiny_lm(seed: int = 0, vocab: int = 20) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=64))


def episode(model_tokens: list[int], tool_tokens: list[int] = (), reward: float = 0.0) -> Episode:
    ep = Episode.from_prompt([1, 2], "p")
    ep.add("model", model_tokens[:2], "m")
    ep.add("tool", list(tool_tokens), "t")
    ep.add("model", model_tokens[2:], "m")
    ep.reward = reward
    return ep


# ---------------------------------------------------------------- the interface


def test_every_algorithm_is_registered_with_a_config_and_the_interface():
    assert set(ALGORITHMS) == {"ppo", "grpo", "sft"}
    for name, cls in ALGORITHMS.items():
        assert issubclass(cls, Algorithm) and cls.learns_from in ("rollouts", "demonstrations")
        assert make_algo_cfg(name).name == name  # conf/algo/<name>.yaml composes onto cls.Config
        assert isinstance(make_algo_cfg(name), cls.Config)


# ---------------------------------------------------------------- GRPO maths


def test_group_advantages_by_hand():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])  # two groups of 3
    scaled = group_advantages(scores, 3, "group")
    mean1, std1 = 1 / 3, math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)  # sample std, as torch.std
    assert scaled[:3].tolist() == pytest.approx([(1 - mean1) / (std1 + 1e-4), -mean1 / (std1 + 1e-4), -mean1 / (std1 + 1e-4)])
    assert scaled[3:].tolist() == [0.0, 0.0, 0.0]  # all right: no signal
    assert group_advantages(scores, 3, "none")[:3].tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3])  # Dr. GRPO


def test_k3_is_zero_at_equal_policies_and_positive_elsewhere():
    lp = torch.tensor([-1.0, -2.0])
    assert k3_kl(lp, lp).tolist() == [0.0, 0.0]
    ref = torch.tensor([-1.5, -1.0])
    r = ref - lp
    assert k3_kl(lp, ref).tolist() == pytest.approx((torch.exp(r) - r - 1).tolist())
    assert (k3_kl(lp, ref) > 0).all()


def test_loss_aggregations_by_hand():
    loss = torch.tensor([[1.0, 1.0, 1.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "token", 10).item() == pytest.approx(7 / 4)  # every token weighs the same
    assert aggregate(loss, mask, "sequence", 10).item() == pytest.approx((1 + 4) / 2)  # every episode the same
    assert aggregate(loss, mask, "dr_grpo", 10).item() == pytest.approx(7 / (2 * 10))  # a constant normaliser


def test_grpo_masks_tool_tokens_and_moves_towards_the_better_episode():
    """One update: the rewarded episode's model tokens get likelier, the other's less likely; tool
    tokens carry no advantage and no gradient (their log-probs hardly move)."""
    lm = tiny_lm()
    cfg = make_algo_cfg("grpo", group_size=2, lr=1e-2, beta=0.0)
    algo = GRPO(cfg, make_setup(lm, minibatch_size=2))
    good, bad = episode([5, 6, 7, 8], [9, 9, 9], reward=1.0), episode([10, 11, 12, 13], [9, 9, 9], reward=0.0)
    exp = algo.prepare([good, bad])
    mask = exp.batch.action_mask
    tool_cols = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 0]], dtype=torch.bool).expand(2, -1)[:, : mask.shape[1]]
    assert (exp.advantages[tool_cols] == 0).all() and (mask[tool_cols] == 0).all()
    assert exp.advantages[0][mask[0] > 0].gt(0).all() and exp.advantages[1][mask[1] > 0].lt(0).all()
    before = logprobs_of(lm(exp.batch.input_ids).logits, exp.batch.input_ids).detach()
    metrics = algo.update(exp, 0)
    after = logprobs_of(lm(exp.batch.input_ids).logits, exp.batch.input_ids).detach()
    gain = (after - before) * mask
    assert gain[0].sum() > 0 > gain[1].sum()
    assert metrics["grpo/policy/clipfrac"] == 0.0  # one epoch, one minibatch: the ratio is 1
    assert "objective/kl" not in metrics  # beta 0: no reference model at all
    assert algo.reference is None


def test_grpo_with_beta_reports_kl_and_keeps_a_reference():
    lm = tiny_lm()
    algo = GRPO(make_algo_cfg("grpo", group_size=2, lr=1e-2, beta=0.1, update_epochs=2), make_setup(lm, minibatch_size=2))
    exp = algo.prepare([episode([5, 6, 7, 8], reward=1.0), episode([10, 11, 12, 13], reward=0.0)])
    first = algo.update(exp, 0)
    assert first["objective/kl"] == pytest.approx(0.0, abs=1e-6)  # the batch was scored before any step
    exp = algo.prepare([episode([5, 6, 7, 8], reward=1.0), episode([10, 11, 12, 13], reward=0.0)])
    assert algo.update(exp, 1)["objective/kl"] != 0.0  # the policy has moved from its reference


def test_grpo_refuses_a_batch_of_broken_groups():
    algo = GRPO(make_algo_cfg("grpo", group_size=4), make_setup(tiny_lm()))
    with pytest.raises(ValueError, match="algo.group_size=4"):
        algo.prepare([episode([5, 6, 7])] * 6)


@pytest.mark.parametrize("name", ["ppo", "grpo"])
def test_entropy_coef_is_a_bonus_when_positive_and_a_penalty_when_negative(name):
    """The same batch, the same start: one update with a negative entropy_coef leaves the policy's
    model-token entropy lower than with none, a positive one higher."""
    from orchestrator.algos.batch import entropy_of, masked_mean
    from orchestrator.algos.ppo import PPO

    entropies = {}
    for coef in (-1.0, 0.0, 1.0):
        lm = tiny_lm()
        cls, extra = (PPO, {}) if name == "ppo" else (GRPO, {"group_size": 2, "beta": 0.0})
        algo = cls(make_algo_cfg(name, lr=1e-3, entropy_coef=coef, **extra), make_setup(lm, minibatch_size=4))
        exp = algo.prepare([episode([5, 6, 7, 8], reward=1.0), episode([10, 11, 12, 13], reward=1.0),
                            episode([5, 6, 12, 13], reward=0.0), episode([10, 11, 7, 8], reward=0.0)])
        metrics = algo.update(exp, 0)
        assert metrics["objective/entropy"] > 0
        with torch.no_grad():
            logits = lm(exp.batch.input_ids).logits
        entropies[coef] = masked_mean(entropy_of(logits), exp.batch.action_mask).item()
    assert entropies[-1.0] < entropies[0.0] < entropies[1.0], entropies


# ---------------------------------------------------------------- SFT


def test_sft_loss_is_the_token_mean_over_model_tokens_only():
    lm = tiny_lm()
    algo = SFT(make_algo_cfg("sft", lr=1e-3, warmup_steps=0), make_setup(lm, minibatch_size=1, max_steps=5))
    eps = [episode([5, 6, 7, 8], [9, 9]), episode([10, 11, 12], [13])]
    batch = algo.prepare(eps)
    with torch.no_grad():
        lp = logprobs_of(lm(batch.input_ids, attention_mask=batch.attention_mask).logits, batch.input_ids)
    expected = -(lp * batch.action_mask).sum() / batch.action_mask.sum()
    metrics = algo.update(batch, 0)
    assert metrics["sft/loss"] == pytest.approx(expected.item(), rel=1e-5)  # two chunks of one, one mean
    assert metrics["sft/tokens"] == batch.action_mask.sum().item() == 7
    assert metrics["sft/learning_rate"] == pytest.approx(1e-3)


def test_sft_gradient_ignores_prompt_and_tool_tokens():
    """The loss and its gradient are those of the full logits masked to model tokens: the head
    runs only where a token is trained, and prompt and tool tokens are never targets."""
    lm = tiny_lm()
    algo = SFT(make_algo_cfg("sft"), make_setup(lm))
    batch = algo.prepare([episode([5, 6, 7, 8], [9, 9]), episode([10, 11, 12], [13, 14, 15])])
    mask = batch.action_mask[0]
    assert mask.tolist() == [0, 1, 1, 0, 0, 1, 1]  # prompt 1 2 | model 5 6 | tool 9 9 | model 7 8
    algo.token_nll(batch).backward()
    selected = {n: p.grad.clone() for n, p in lm.named_parameters()}
    lm.zero_grad()
    logits = lm(batch.input_ids, attention_mask=batch.attention_mask).logits
    full = -(logprobs_of(logits, batch.input_ids) * batch.action_mask).sum()
    full.backward()
    for name, param in lm.named_parameters():
        assert torch.allclose(selected[name], param.grad, atol=1e-6), name
    assert float(algo.token_nll(batch)) == pytest.approx(float(full), rel=1e-5)


def test_sft_refuses_a_demonstration_without_trained_tokens():
    algo = SFT(make_algo_cfg("sft"), make_setup(tiny_lm()))
    empty = Episode.from_prompt([1, 2, 3], "p")
    empty.add("tool", [4, 5], "t")
    with pytest.raises(ValueError, match="no trained token"):
        algo.prepare([empty, episode([5, 6, 7])])


def test_schedules_are_functions_of_the_step():
    assert linear_anneal(1.0, 0, 10) == 1.0 and linear_anneal(1.0, 5, 10) == 0.5
    lrs = [warmup_cosine(1.0, s, 20, 5) for s in range(20)]
    assert lrs[:6] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])  # Hugging Face's: from 0
    assert lrs[10] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 15)))
    assert warmup_cosine(1.0, 20, 20, 5) == pytest.approx(0.0)
    assert warmup_cosine(1.0, 7, 20, 0, "constant") == 1.0


# ---------------------------------------------------------------- demonstrations by character offsets


def byte_tokenizer():
    from orchestrator.models.tokens import build_byte_tokenizer

    return build_byte_tokenizer(extra_tokens=["<Calculator>"])


def bpe_tokenizer():
    """A BPE tokenizer trained here, whose merges cross the spans' boundaries."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = ["What is 12*3?\n\nResult=36", "Thought: call it\nAction: get_weather_for_weather"] * 50
    core.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>", "<pad>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    from orchestrator.models.tokens import add_protocol_tokens

    add_protocol_tokens(tok)
    return tok


@pytest.mark.parametrize("make", [byte_tokenizer, bpe_tokenizer], ids=["byte-level", "bpe"])
def test_demonstration_tokens_are_labelled_by_character_offsets(make):
    tok = make()
    demo = [("prompt", "What is 12*3?\n\n"), ("model", "<request><Calculator>12*3<call>"), ("tool", "36<response>"),
            ("model", "\n\nResult=36<submit>")]
    ep = to_episode(tok, demo, max_length=200)
    text = "".join(t for _, t in demo)
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ep.ids == ids  # one tokenization of the whole text, not one per span
    model_text = tok.decode([t for t, m in zip(ep.ids, ep.mask) if m], skip_special_tokens=False)
    assert "36<response>" not in model_text and "What is" not in model_text
    assert "Result=36<submit>" in model_text and "12*3<call>" in model_text
    tool_text = "".join(s.text for s in ep.segments if s.source == "tool")
    assert "36" in tool_text
    # the segments' texts are the demonstration's own characters, then the end token
    assert "".join(s.text for s in ep.segments) == text + tok.eos_token
    decoded = [tok.decode(s.token_ids, clean_up_tokenization_spaces=False) for s in ep.segments]
    assert [s.text for s in ep.segments] == decoded
    # cut short, the texts end where the kept tokens do; one call for many demonstrations gives
    # what one call each does
    cut = to_episode(tok, demo, max_length=8)
    assert len(cut.ids) == 8
    assert "".join(s.text for s in cut.segments) == tok.decode(cut.ids, clean_up_tokenization_spaces=False)
    many = to_episodes(tok, [demo, demo[:2]], max_length=200)
    assert [m.ids for m in many] == [ep.ids, to_episode(tok, demo[:2], max_length=200).ids]


def test_a_demonstration_cut_before_its_model_span_is_an_error():
    tok = byte_tokenizer()
    demo = [("prompt", "x" * 50), ("model", "Result=1<submit>")]
    assert to_episode(tok, demo, max_length=200).num_model_tokens > 0
    with pytest.raises(ValueError, match="no trained token"):
        to_episodes(tok, [demo], max_length=20)


# ---------------------------------------------------------------- demonstrations grouped by length


def grouped_sources(world_size: int, group_by_length: bool, n: int = 230, per_step: int = 4):
    from orchestrator.worker.sources import DemonstrationSource

    tok = byte_tokenizer()
    lengths = [5 + (i * 37) % 90 for i in range(n)]
    demos = [[("prompt", f"Q{i}:" + "x" * k), ("model", "Result=1<submit>")] for i, k in enumerate(lengths)]
    return [DemonstrationSource(demos, tok, 400, seed=3, rank=r, world_size=world_size,
                                per_worker=per_step // world_size, group_by_length=group_by_length)
            for r in range(world_size)]


def test_group_by_length_steps_hold_similar_lengths_and_keep_the_epoch_and_the_workers_split():
    import statistics

    def step_sets(world_size: int, grouped: bool, steps: int) -> list[set[tuple[int, ...]]]:
        sources = grouped_sources(world_size, grouped)
        return [{tuple(ep.ids) for s in sources for ep in s.batch(None, k)} for k in range(steps)]

    steps_per_epoch = 230 // 4  # 57 full steps; the 2 left over start the next epoch's first step
    plain, grouped = step_sets(1, False, steps_per_epoch), step_sets(1, True, steps_per_epoch)
    assert sorted(grouped_sources(1, True)[0]._order(0)) == list(range(230))  # every demonstration once an epoch
    spread = {name: statistics.mean(max(len(i) for i in s) - min(len(i) for i in s) for s in sets)
              for name, sets in (("plain", plain), ("grouped", grouped))}
    assert spread["grouped"] < spread["plain"] / 5, spread  # a step pads far less
    assert grouped != sorted(grouped, key=lambda s: -max(len(i) for i in s))  # steps not in length order
    assert step_sets(2, True, steps_per_epoch) == grouped  # 2 workers draw the 1-worker steps between them
