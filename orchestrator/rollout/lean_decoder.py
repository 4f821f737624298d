"""A lean sampling forward for decoder-only models: the Llama family (Llama, Qwen2, Mistral
without a window) and GPT-2.

Why it exists: a rollout is hundreds of one-token forward calls. For a small model on a CPU,
or any model at a small batch, the time of such a call is mostly Python: transformers builds
a mask, walks cache objects and calls ~20 modules per layer, each through ``nn.Module``
hooks. This module runs the same arithmetic as the transformers model with the model's own
parameters (read live, so every PPO update is seen) in a few fused ``torch`` calls per layer,
with a preallocated key/value cache that all rows write at the same column.

It is used for sampling only: training and scoring keep the transformers forward, so
gradients, log-probs and checkpoints never depend on this code. ``lean_decoder_for`` returns
None for any configuration it does not reproduce exactly (another rope type, biased MLPs,
sliding windows, tensor-parallel slicing, GPT-2's per-layer attention scaling), and the
sampler then uses ``model(...)``. ``tests/test_lean_decoder.py`` checks logits and draws
against the transformers forward.
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
    model_type = getattr(config, "model_type", None)
    if model_type in SUPPORTED_MODEL_TYPES:
        return _llama_decoder(model)
    if model_type == "gpt2":
        return _gpt2_decoder(model)
    return None


def _llama_decoder(model: torch.nn.Module) -> "LeanDecoder | None":
    config = model.config
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
    return LlamaDecoder(model)


def _gpt2_decoder(model: torch.nn.Module) -> "LeanDecoder | None":
    config = model.config
    if getattr(config, "activation_function", None) not in ("gelu_new", "gelu_pytorch_tanh"):
        return None
    if not getattr(config, "scale_attn_weights", True) or getattr(config, "scale_attn_by_inverse_layer_idx", False) \
            or getattr(config, "reorder_and_upcast_attn", False) or getattr(config, "add_cross_attention", False):
        return None
    if not hasattr(model, "transformer"):
        return None
    return GPT2Decoder(model)


@dataclass
class RowCache:
    """One episode's keys and values after a turn, ready to be continued by the next."""

    keys: torch.Tensor  # (layers, kv_heads, columns, head_dim)
    values: torch.Tensor
    bias: torch.Tensor  # (columns,): 0 where a token is, -inf on holes left by padding
    tokens: int  # how many of the episode's tokens the columns hold


@dataclass
class _Layer:
    """One layer's parameters, fused where that saves calls (q/k/v; gate/up for Llama)."""

    norm1: torch.Tensor
    norm1_bias: torch.Tensor | None
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    out: torch.Tensor
    out_bias: torch.Tensor | None
    norm2: torch.Tensor
    norm2_bias: torch.Tensor | None
    up: torch.Tensor  # Llama: gate and up stacked; GPT-2: c_fc
    up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None


class LeanDecoder:
    """Prefill, then one token per row per call, over a key/value cache of fixed capacity.

    Rows are left-padded, so every row writes its next key/value at the same column; each row
    keeps its own position id (from its attention mask), exactly as the training forward does.
    A model family supplies its parameters and the parts around attention (``_embed``,
    ``_project``, ``_finish_layer``, ``_logits``); caching, masks and attention are shared.
    """

    def __init__(self, model: torch.nn.Module, heads: int, kv_heads: int, head_dim: int) -> None:
        self.model = model
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.scale = head_dim ** -0.5

    # --- what a model family supplies ------------------------------------------------------
    def _prepare(self, device: torch.device, dtype: torch.dtype, max_position: int) -> None:
        """Read the parameters (afresh every turn: PPO changes them between turns)."""
        raise NotImplementedError

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _project(self, layer: _Layer, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries (B, T, heads, D), keys and values (B, T, kv_heads, D), positions applied."""
        raise NotImplementedError

    def _finish_layer(self, layer: _Layer, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

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
        device, dtype = input_ids.device, self.dtype
        self._prepare(device, dtype, int(positions.max()) + capacity + 1)
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
        hidden = self._embed(input_ids, positions)
        for index, layer in enumerate(self.params):
            q, k, v = self._project(layer, hidden, positions)
            q = q.transpose(1, 2)
            if subset is None:
                self.keys[index, :, :, column:end] = k.transpose(1, 2)
                self.values[index, :, :, column:end] = v.transpose(1, 2)
                keys, values = self.keys[index, :, :, :end], self.values[index, :, :, :end]
            else:
                self.keys[index, subset, :, column:end] = k.transpose(1, 2)
                self.values[index, subset, :, column:end] = v.transpose(1, 2)
                keys, values = self.keys[index, subset, :, :end], self.values[index, subset, :, :end]
            if width == 1:
                attended = self._attend_one(q, keys, values, mask)
            else:
                attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scale,
                                                          enable_gqa=kv_heads != heads).transpose(1, 2)
            hidden = self._finish_layer(layer, hidden, attended.reshape(rows, width, heads * dim))
        return self._logits(hidden[:, -1])


class LlamaDecoder(LeanDecoder):
    """RMSNorm, rotary positions, grouped-query attention, gated SiLU MLP."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        heads = int(config.num_attention_heads)
        super().__init__(model, heads, int(getattr(config, "num_key_value_heads", None) or heads),
                         int(getattr(config, "head_dim", None) or config.hidden_size // heads))
        self.eps = float(config.rms_norm_eps)

    def _prepare(self, device: torch.device, dtype: torch.dtype, max_position: int) -> None:
        base = self.model.model
        self.params = []
        for block in base.layers:
            attn, mlp = block.self_attn, block.mlp
            projections = (attn.q_proj, attn.k_proj, attn.v_proj)
            biases = [p.bias for p in projections]
            self.params.append(_Layer(
                norm1=block.input_layernorm.weight, norm1_bias=None,
                qkv=torch.cat([p.weight for p in projections]),
                qkv_bias=torch.cat(biases) if all(b is not None for b in biases) else None,
                out=attn.o_proj.weight, out_bias=attn.o_proj.bias,
                norm2=block.post_attention_layernorm.weight, norm2_bias=None,
                up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), up_bias=None,
                down=mlp.down_proj.weight, down_bias=None,
            ))
        self.embed = base.embed_tokens.weight
        self.final_norm = base.norm.weight
        self.head = self.model.get_output_embeddings().weight
        inv_freq = base.rotary_emb.inv_freq.to(device=device, dtype=torch.float32)
        angles = torch.arange(max_position, device=device, dtype=torch.float32)[:, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1)
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), weight, self.eps)
        # transformers normalises in float32 and casts back before the weight
        return weight * F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).to(x.dtype)

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.embed)

    def _project(self, layer: _Layer, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows, width = hidden.shape[:2]
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        qkv = F.linear(self._norm(hidden, layer.norm1), layer.qkv, layer.qkv_bias)
        qkv = qkv.view(rows, width, heads + 2 * kv_heads, dim)
        qk, v = qkv[:, :, : heads + kv_heads], qkv[:, :, heads + kv_heads:]
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]  # (B, T, 1, D)
        half = dim // 2
        qk = qk * cos + torch.cat([-qk[..., half:], qk[..., :half]], dim=-1) * sin
        return qk[:, :, :heads], qk[:, :, heads:], v

    def _finish_layer(self, layer: _Layer, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        hidden = hidden + F.linear(attended, layer.out, layer.out_bias)
        gate, up = F.linear(self._norm(hidden, layer.norm2), layer.up).chunk(2, dim=-1)
        return hidden + F.linear(F.silu(gate) * up, layer.down)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self._norm(hidden, self.final_norm), self.head)


class GPT2Decoder(LeanDecoder):
    """LayerNorm, learned absolute positions, fused biased q/k/v (Conv1D: weights stored
    input-major), tanh-approximated GELU MLP."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        heads = int(config.n_head)
        super().__init__(model, heads, heads, int(config.n_embd) // heads)
        self.eps = float(config.layer_norm_epsilon)

    def _prepare(self, device: torch.device, dtype: torch.dtype, max_position: int) -> None:
        base = self.model.transformer
        self.params = [_Layer(
            norm1=block.ln_1.weight, norm1_bias=block.ln_1.bias,
            qkv=block.attn.c_attn.weight.t(), qkv_bias=block.attn.c_attn.bias,
            out=block.attn.c_proj.weight.t(), out_bias=block.attn.c_proj.bias,
            norm2=block.ln_2.weight, norm2_bias=block.ln_2.bias,
            up=block.mlp.c_fc.weight.t(), up_bias=block.mlp.c_fc.bias,
            down=block.mlp.c_proj.weight.t(), down_bias=block.mlp.c_proj.bias,
        ) for block in base.h]
        self.embed, self.positions = base.wte.weight, base.wpe.weight
        self.final_norm, self.final_norm_bias = base.ln_f.weight, base.ln_f.bias
        self.head = self.model.get_output_embeddings().weight

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.embed) + F.embedding(positions, self.positions)

    def _project(self, layer: _Layer, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows, width = hidden.shape[:2]
        x = F.layer_norm(hidden, (hidden.shape[-1],), layer.norm1, layer.norm1_bias, self.eps)
        q, k, v = F.linear(x, layer.qkv, layer.qkv_bias).view(rows, width, 3 * self.heads, self.head_dim).chunk(3, dim=2)
        return q, k, v

    def _finish_layer(self, layer: _Layer, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        hidden = hidden + F.linear(attended, layer.out, layer.out_bias)
        x = F.layer_norm(hidden, (hidden.shape[-1],), layer.norm2, layer.norm2_bias, self.eps)
        return hidden + F.linear(F.gelu(F.linear(x, layer.up, layer.up_bias), approximate="tanh"), layer.down, layer.down_bias)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(hidden, (hidden.shape[-1],), self.final_norm, self.final_norm_bias, self.eps)
        return F.linear(x, self.head)
