"""PPO maths against values computed by hand on small tensors."""

import math

import pytest
import torch

from orchestrator.algos.batch import collate, logprobs_of, masked_whiten
from orchestrator.algos.ppo import (
    AdaptiveKLController,
    compute_rewards,
    gae_over_actions,
    last_action_index,
    ppo_loss,
)
from orchestrator.rollout.episode import Episode
from tests.conftest import make_algo_cfg, make_setup


def test_logprobs_pick_the_next_token():
    # vocab 2, T=3: logits at t predict token t+1
    logits = torch.tensor([[[0.0, 0.0], [math.log(3), 0.0], [5.0, 5.0]]])
    ids = torch.tensor([[1, 0, 0]])
    lp = logprobs_of(logits, ids)
    assert lp.shape == (1, 2)
    assert lp[0, 0].item() == pytest.approx(math.log(0.5))  # p(token0)=0.5 at t=0
    assert lp[0, 1].item() == pytest.approx(math.log(0.75))  # softmax([ln3, 0])[0] = 3/4


def test_rewards_put_score_on_last_model_token_and_kl_on_model_tokens_only():
    logp = torch.tensor([[-1.0, -2.0, -0.5, -0.1]])
    ref = torch.tensor([[-1.5, -2.0, -0.1, -0.3]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # last two are tool tokens
    rewards, kl = compute_rewards(torch.tensor([2.0]), logp, ref, mask, kl_coef=0.1)
    assert kl.flatten().tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0])
    # -0.1 * 0.5 on the first; second: -0.1*0 + score 2
    assert rewards.flatten().tolist() == pytest.approx([-0.05, 2.0, 0.0, 0.0])
    assert last_action_index(mask).tolist() == [1]


def test_gae_skips_tool_tokens():
    # actions at t = 0, 1, 4 (t = 2, 3 are tool tokens): the next state of t=1 is t=4.
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    rewards = torch.tensor([[0.0, 0.0, 9.0, 9.0, 1.0]])  # rewards on tool tokens must be ignored
    values = torch.tensor([[0.5, 0.2, 7.0, 7.0, 0.4]])
    gamma, lam = 0.9, 0.5
    adv, ret = gae_over_actions(rewards * mask, values, mask, gamma, lam)
    # by hand, over the compacted sequence r=[0,0,1], v=[0.5,0.2,0.4]:
    d2 = 1 - 0.4                      # last: no next value
    d1 = 0 + gamma * 0.4 - 0.2
    d0 = 0 + gamma * 0.2 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    assert adv.flatten().tolist() == pytest.approx([a0, a1, 0.0, 0.0, a2])
    assert ret.flatten().tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, 0.0, 0.0, a2 + 0.4])


def test_gae_rows_are_independent_and_padding_is_zero():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    rewards = torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 0.0]])
    values = torch.zeros(2, 3)
    adv, _ = gae_over_actions(rewards, values, mask, gamma=1.0, lam=1.0)
    assert adv.flatten().tolist() == pytest.approx([1.0, 1.0, 1.0, 2.0, 0.0, 0.0])


def test_whiten_ignores_masked_entries():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0, 0.0]])
    w = masked_whiten(x, m)
    assert w.flatten().tolist() == pytest.approx([-1.0, 1.0, 0.0], abs=1e-4)


def test_clipped_policy_and_value_losses_by_hand():
    cfg = make_algo_cfg("ppo", cliprange=0.2, cliprange_value=0.2, vf_coef=0.1)
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.5)]])  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, -1.0]])
    values = torch.tensor([[1.0, 0.0]])
    old_values = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[1.0, 1.0]])
    mask = torch.ones(1, 2)
    out = ppo_loss(new, old, values, old_values, adv, returns, mask, cfg)
    # token 0: A=1, ratio 1.5 -> max(-1.5, -1.2) = -1.2 ; token 1: A=-1, ratio .5 -> max(.5, .8) = .8
    assert out.pg_loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert out.clipfrac.item() == pytest.approx(1.0)
    # value 0: v=1 clipped to 0.2 -> max(0, 0.64)=0.64 ; value 1: v=0 -> max(1, 1) = 1
    assert out.vf_loss.item() == pytest.approx(0.5 * (0.64 + 1.0) / 2)
    assert out.loss.item() == pytest.approx(out.pg_loss.item() + 0.1 * out.vf_loss.item())
    assert out.approxkl.item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2) / 2)


def test_masked_tokens_get_no_gradient():
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 4, requires_grad=True)
    values = torch.randn(1, 4, requires_grad=True)
    ids = torch.tensor([[0, 1, 2, 3, 1]])
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # actions at t=0 and t=3; t=1,2 predict tool tokens
    lp = logprobs_of(logits, ids)
    out = ppo_loss(lp, lp.detach() + 0.1, values, values.detach(), torch.ones(1, 4), torch.ones(1, 4), mask, make_algo_cfg("ppo"))
    out.loss.backward()
    assert logits.grad[0, 1].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 0].abs().sum() > 0 and logits.grad[0, 3].abs().sum() > 0
    assert values.grad[0, 1] == 0 and values.grad[0, 2] == 0


def test_adaptive_kl_controller_by_hand():
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    ctl.update(current_kl=9.0, n_episodes=100)  # error clipped to 0.2
    assert ctl.value == pytest.approx(0.2 * (1 + 0.2 * 100 / 10000))
    ctl.update(current_kl=5.4, n_episodes=100)  # error -0.1
    assert ctl.value == pytest.approx(0.2 * 1.002 * (1 - 0.1 * 0.01))


def test_collate_masks_follow_segments():
    ep = Episode.from_prompt([5, 6], "p")
    ep.add("model", [7, 8], "m")
    ep.add("tool", [9], "t")
    ep.add("model", [10], "m2")
    ep.reward = 1.0
    short = Episode.from_prompt([5], "p")
    short.add("model", [7], "m")
    batch = collate([ep, short], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 10], [5, 7, 0, 0, 0, 0]]
    assert batch.action_mask.tolist() == [[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]]
    assert batch.scores.tolist() == [1.0, 0.0]


def test_scoring_in_length_sorted_chunks_equals_one_full_width_pass():
    """The learner scores old/reference log-probs and values in chunks cut to their own width:
    on every position an action can sit on, the numbers are those of one full-width pass."""
    import copy

    from transformers import LlamaConfig, LlamaForCausalLM

    from orchestrator.algos.ppo import PPO

    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=20, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=64)).eval()
    ref = copy.deepcopy(lm)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    episodes = []
    for n in (3, 9, 2, 6, 12):
        ep = Episode.from_prompt([1, 2], "p")
        ep.add("model", [int(t) for t in torch.randint(3, 20, (n,))], "m")
        episodes.append(ep)
    algo = PPO(make_algo_cfg("ppo"), make_setup(lm, reference=ref, minibatch_size=2))
    exp = algo.prepare(episodes)
    batch = collate(episodes, pad_id=0)
    old, values = exp.old_logprobs, exp.old_values
    ref_lp = exp.old_logprobs - exp.kl  # the KL is stored per model token: old - reference
    policy = algo.model
    with torch.no_grad():
        logits, full_values = policy(batch.input_ids, batch.attention_mask, batch.position_ids)
        ref_logits = ref(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids).logits
    mask = batch.action_mask.bool()
    assert torch.allclose(old[mask], logprobs_of(logits, batch.input_ids)[mask], atol=1e-5)
    assert torch.allclose(values[mask], full_values[:, :-1][mask], atol=1e-5)
    assert torch.allclose(ref_lp[mask], logprobs_of(ref_logits, batch.input_ids)[mask], atol=1e-5)
    assert not torch.allclose(old[mask], ref_lp[mask], atol=1e-3)  # the two models differ
