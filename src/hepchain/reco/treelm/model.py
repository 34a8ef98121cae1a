"""The decoder: ``transformers``' Llama (maintained implementation) with a small config —
grouped-query attention (``num_key_value_heads`` < ``num_attention_heads``), RoPE, RMSNorm,
and ReLU² as the activation of Llama's gated MLP (``hidden_act="relu2"``: down(relu(gate x)² ·
up x), i.e. gated ReLU², not the seed's plain ReLU² FFN); tied input/output embeddings."""

from __future__ import annotations

from typing import Any

from transformers import LlamaConfig, LlamaForCausalLM

from hepchain.reco.treelm.vocab import VOCAB


def build_model(spec: dict[str, Any], max_len: int) -> LlamaForCausalLM:
    """A Llama decoder of ``spec`` (width, depth, heads, kv_heads, ffn) over the tree vocabulary."""
    width = int(spec["width"])
    config = LlamaConfig(
        vocab_size=len(VOCAB), hidden_size=width, intermediate_size=int(spec["ffn"]),
        num_hidden_layers=int(spec["depth"]), num_attention_heads=int(spec["heads"]),
        num_key_value_heads=int(spec["kv_heads"]), hidden_act="relu2",
        max_position_embeddings=max_len, rope_theta=10_000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        pad_token_id=VOCAB.id("PAD"), bos_token_id=VOCAB.id("BOS"),
        eos_token_id=VOCAB.id("EOE"), attn_implementation="sdpa")
    return LlamaForCausalLM(config)


def n_parameters(model: LlamaForCausalLM) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
