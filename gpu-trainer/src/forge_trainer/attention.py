"""Padding-free packed attention: each example in a packed row attends only to itself, causally.

Registered with transformers' AttentionInterface as `forge_varlen`. The model receives `cu_seq_lens_q` (the
boundaries of the examples in the row, as a Python list) through its forward kwargs. Each segment runs
`scaled_dot_product_attention(is_causal=True)` on its own, so no L×L mask is built and no cross-example
attention is computed (a block-diagonal mask would compute every block and throw most away).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

NAME = "forge_varlen"


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query [batch, heads, seq, dim]; returns [batch, seq, heads, dim] like transformers' own functions."""
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None or query.shape[0] != 1:
        # Unpacked rows are right-padded: causal attention alone keeps real tokens off the padding after them.
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling,
                                             is_causal=query.shape[2] > 1)
    else:
        bounds = bounds.tolist() if isinstance(bounds, torch.Tensor) else list(bounds)
        out = torch.cat([
            F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=dropout,
                                           scale=scaling, is_causal=e - s > 1)
            for s, e in zip(bounds[:-1], bounds[1:])
        ], dim=2)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make `forge_varlen` a valid `attn_implementation`; safe to call more than once."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention)
    return NAME
