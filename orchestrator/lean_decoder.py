"""A lean sampling forward for Llama-family decoders (Llama, Qwen2, Mistral without a window).

Why it exists: a rollout is hundreds of one-token forward calls. For a small model on a CPU,
or any model at a small batch, the time of such a call is mostly Python: transformers builds
a mask, walks cache objects and calls ~20 modules per layer, each through ``nn.Module``
hooks. This module runs the same arithmetic as ``LlamaForCausalLM`` with the model's own
parameters (read live, so every PPO update is seen) in a few fused ``torch`` calls per layer,
with a preallocated key/value cache that all rows write at the same column.

It is used for sampling only: training and scoring keep the transformers forward, so
gradients, log-probs and checkpoints never depend on this code. ``lean_decoder_for`` returns
None for any configuration it does not reproduce exactly (another rope type, biased MLPs,
sliding windows, tensor-parallel slicing), and the sampler then uses ``model(...)``.
``tests/test_sampler.py`` checks logits and greedy tokens against the transformers forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED_MODEL_TYPES = frozenset({"llama", "qwen2", "mistral"})


def _rope_type(config: Any) -> str:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return str(params.get("rope_type", params.get("type", "default")))


def lean_decoder_for(model: torch.nn.Module) -> "LeanDecoder | None":
    """A lean decoder over ``model``'s parameters, or None when it would not compute the same."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return None
    if _rope_type(config) != "default" or getattr(config, "hidden_act", None) != "silu":
        return None
    if getattr(config, "mlp_bias", False) or getattr(config, "pretraining_tp", 1) != 1:
        return None
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True) \
            and config.model_type != "llama":
        return None
    base = getattr(model, "model", None)
    if base is None or not hasattr(base, "layers") or not hasattr(base, "rotary_emb"):
        return None
    if getattr(base.rotary_emb, "attention_scaling", 1.0) != 1.0:
        return None
    return LeanDecoder(model)


@dataclass
class RowCache:
    """One episode's keys and values after a turn, ready to be continued by the next."""

    keys: torch.Tensor  # (layers, kv_heads, columns, head_dim)
    values: torch.Tensor
    bias: torch.Tensor  # (columns,): 0 where a token is, -inf on holes left by padding
    tokens: int  # how many of the episode's tokens the columns hold


@dataclass
class _Layer:
    """One layer's parameters, fused where that saves calls (q/k/v, gate/up)."""

    norm1: torch.Tensor
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    out: torch.Tensor
    out_bias: torch.Tensor | None
    norm2: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


class LeanDecoder:
    """Prefill, then one token per row per call, over a key/value cache of fixed capacity.

    Rows are left-padded, so every row writes its next key/value at the same column; each row
    keeps its own position id (from its attention mask), exactly as the training forward does.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        self.model = model
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.eps = float(config.rms_norm_eps)
        self.scale = self.head_dim ** -0.5

    # --- parameters, read afresh for every turn (PPO changes them between turns) ----------
    def _layers(self) -> list[_Layer]:
        layers = []
        for block in self.model.model.layers:
            attn, mlp = block.self_attn, block.mlp
            projections = (attn.q_proj, attn.k_proj, attn.v_proj)
            biases = [p.bias for p in projections]
            layers.append(_Layer(
                norm1=block.input_layernorm.weight,
                qkv=torch.cat([p.weight for p in projections]),
                qkv_bias=torch.cat(biases) if all(b is not None for b in biases) else None,
                out=attn.o_proj.weight,
                out_bias=attn.o_proj.bias,
                norm2=block.post_attention_layernorm.weight,
                gate_up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                down=mlp.down_proj.weight,
            ))
        return layers

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), weight, self.eps)
        # transformers normalises in float32 and casts back before the weight
        return weight * F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).to(x.dtype)

    # --- the forward -----------------------------------------------------------------------
    @torch.no_grad()
    def start(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor,
              capacity: int, prefixes: "list[RowCache | None] | None" = None) -> torch.Tensor:
        """Encode left-padded rows; returns each row's last logits.

        ``prefixes[r]``, when given, holds row r's keys and values from an earlier turn, and
        ``input_ids[r]`` only what came after them (the stop token and the tool's output):
        an episode's history is never encoded twice. ``capacity`` is the room for this chunk
        and the tokens still to be written.
        """
        rows, width = input_ids.shape
        device, dtype = input_ids.device, self.model.model.embed_tokens.weight.dtype
        self.params = self._layers()
        self.embed = self.model.model.embed_tokens.weight
        self.final_norm = self.model.model.norm.weight
        self.head = self.model.get_output_embeddings().weight
        inv_freq = self.model.model.rotary_emb.inv_freq.to(device=device, dtype=torch.float32)
        angles = torch.arange(int(positions.max()) + capacity + 1, device=device, dtype=torch.float32)
        angles = angles[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)
        prefixes = prefixes or [None] * rows
        history = max((p.bias.shape[0] for p in prefixes if p is not None), default=0)
        shape = (len(self.params), rows, self.kv_heads, history + capacity, self.head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        # what each row may attend to, as an additive bias: 0 on its tokens, -inf elsewhere
        self.bias = torch.full((rows, history + capacity), float("-inf"), dtype=dtype, device=device)
        for r, prefix in enumerate(prefixes):  # right-aligned, so every row goes on at one column
            if prefix is not None:
                n = prefix.bias.shape[0]
                self.keys[:, r, :, history - n:history] = prefix.keys
                self.values[:, r, :, history - n:history] = prefix.values
                self.bias[r, history - n:history] = prefix.bias
        self.bias[:, history:history + width].masked_fill_(attention.bool(), 0.0)
        self.length = history + width
        # Rows are encoded in groups of similar length (a power of two apart at most): one long
        # tool output must not make every row of the batch pay for its padding. Each group's
        # tokens end at the same column as every other row's; what lies before them is a hole.
        lengths = attention.sum(1).tolist()
        groups: dict[int, list[int]] = {}
        for r, n in enumerate(lengths):
            groups.setdefault(max(int(n) - 1, 0).bit_length(), []).append(r)
        logits = None
        for members in groups.values():
            subset = None if len(members) == rows else torch.tensor(members, device=device)
            w = max(int(lengths[r]) for r in members)
            pick = (lambda t: t[:, width - w:]) if subset is None else (lambda t: t[subset, width - w:])
            sub_attention = pick(attention).bool()
            column = history + width - w
            # this chunk: the row's history, then causal and not padding; a padding query sees
            # itself so that no row is all -inf
            chunk = torch.ones((w, w), dtype=torch.bool, device=device).tril()[None] & sub_attention[:, None]
            chunk |= torch.eye(w, dtype=torch.bool, device=device)[None]
            bias = self.bias if subset is None else self.bias[subset]
            seen = (bias[:, None, :column] == 0).expand(len(members), w, column)
            visible = torch.cat([seen, chunk], dim=-1)[:, None]
            mask = torch.zeros(visible.shape, dtype=dtype, device=device).masked_fill_(~visible, float("-inf"))
            out = self._forward(pick(input_ids), pick(positions), column, mask, subset)
            if subset is None:
                return out
            if logits is None:
                logits = out.new_empty((rows, out.shape[-1]))
            logits[subset] = out
        return logits

    def save(self, row: int, end: int, tokens: int) -> "RowCache":
        """Row ``row``'s keys and values up to column ``end``, holding ``tokens`` sequence tokens,
        copied out (from its first visible column) for the episode's next turn."""
        visible = (self.bias[row, :end] == 0).nonzero()
        first = int(visible[0]) if len(visible) else end
        return RowCache(self.keys[:, row, :, first:end].clone(), self.values[:, row, :, first:end].clone(),
                        self.bias[row, first:end].clone(), tokens)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (at ``positions``); returns the next logits (rows, vocab)."""
        column = self.length
        if column >= self.keys.shape[3]:
            raise ValueError(f"lean decoder cache is full ({column} columns)")
        self.bias[:, column] = 0.0
        self.length += 1
        return self._forward(tokens[:, None], positions[:, None], column, self.bias[:, : self.length])

    def _attend_one(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    bias: torch.Tensor) -> torch.Tensor:
        """One query per row: batched matrix products, which beat SDPA's CPU kernel here 2-3x.

        A group of query heads shares one key/value head (grouped-query attention) by stacking
        the group's queries as rows of one product, so keys and values are never repeated.
        """
        rows, length = keys.shape[0], keys.shape[2]
        group = self.heads // self.kv_heads
        q = q.reshape(rows * self.kv_heads, group, self.head_dim)
        scores = torch.bmm(q, keys.reshape(rows * self.kv_heads, length, self.head_dim).transpose(1, 2))
        scores = scores.view(rows, self.heads, length).mul_(self.scale).add_(bias.reshape(rows, 1, length))
        probs = scores.softmax(-1).view(rows * self.kv_heads, group, length)
        out = torch.bmm(probs, values.reshape(rows * self.kv_heads, length, self.head_dim))
        return out.view(rows, 1, self.heads * self.head_dim)

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every row not in ``rows`` (finished rows stop costing compute).

        Copies only the columns written so far: the cache's capacity is mostly empty.
        """
        used = self.length
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty((old.shape[0], len(rows), *old.shape[2:]))
            new[:, :, :, :used] = old[:, rows, :, :used]
            setattr(self, name, new)
        self.bias = self.bias.index_select(0, rows)

    def _forward(self, input_ids: torch.Tensor, positions: torch.Tensor, column: int,
                 mask: torch.Tensor, subset: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ``input_ids`` at columns ``column:column + width`` of every row, or of the
        cache rows in ``subset``; ``mask`` is added to the attention scores (0 or -inf, over
        columns ``:column + width``). Returns the logits after each row's last token."""
        rows, width = input_ids.shape
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        end = column + width
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]  # (B, T, 1, D)
        hidden = F.embedding(input_ids, self.embed)
        for index, layer in enumerate(self.params):
            x = self._norm(hidden, layer.norm1)
            qkv = F.linear(x, layer.qkv, layer.qkv_bias).view(rows, width, heads + 2 * kv_heads, dim)
            qk, v = qkv[:, :, : heads + kv_heads], qkv[:, :, heads + kv_heads:]
            half = dim // 2
            rotated = torch.cat([-qk[..., half:], qk[..., :half]], dim=-1)
            qk = qk * cos + rotated * sin
            q = qk[:, :, :heads].transpose(1, 2)
            if subset is None:
                self.keys[index, :, :, column:end] = qk[:, :, heads:].transpose(1, 2)
                self.values[index, :, :, column:end] = v.transpose(1, 2)
                keys, values = self.keys[index, :, :, :end], self.values[index, :, :, :end]
            else:
                self.keys[index, subset, :, column:end] = qk[:, :, heads:].transpose(1, 2)
                self.values[index, subset, :, column:end] = v.transpose(1, 2)
                keys, values = self.keys[index, subset, :, :end], self.values[index, subset, :, :end]
            if width == 1:
                attended = self._attend_one(q, keys, values, mask)
            else:
                attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scale,
                                                          enable_gqa=kv_heads != heads).transpose(1, 2)
            hidden = hidden + F.linear(attended.reshape(rows, width, heads * dim), layer.out, layer.out_bias)
            gate, up = F.linear(self._norm(hidden, layer.norm2), layer.gate_up).chunk(2, dim=-1)
            hidden = hidden + F.linear(F.silu(gate) * up, layer.down)
        return F.linear(self._norm(hidden[:, -1], self.final_norm), self.head)
