"""Write a tiny random-weight llama GGUF: a real model for tests, made in well under a second.

No weights can be downloaded in CI, but llama.cpp loads and runs this file for real, so the test suite
exercises the true model path: loading, chat templates, streaming and grammar-constrained decoding. The
vocabulary is GPT-2's 256 byte tokens (so any text tokenizes), one merge (an empty merges list is dropped
by the writer and the load then fails), and ChatML control tokens.

Needs the ``gguf`` package (``pip install "tessera[dev]"``).
"""

from __future__ import annotations

from pathlib import Path

from tessera.errors import MissingDependencyError

__all__ = ["CHATML_TEMPLATE", "write_bench_gguf", "write_tiny_gguf"]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def write_tiny_gguf(
    path: str | Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int | None = None,
    n_ff: int = 128,
    n_ctx: int = 2048,
    seed: int = 0,
    chat_template: str | None = CHATML_TEMPLATE,
    name: str = "tessera-tiny",
) -> Path:
    """Write a random-weight llama-architecture GGUF to ``path`` and return the path.

    The defaults make a ~0.1M-parameter model for tests; :func:`write_bench_gguf` makes a bigger one.
    """
    try:
        import gguf
        import numpy as np
    except ImportError:
        raise MissingDependencyError(
            'writing GGUF files needs the gguf package: pip install "tessera[testing]"'
        ) from None

    out = Path(path)
    rng = np.random.default_rng(seed)
    table = _byte_to_unicode()
    tokens = [table[b] for b in range(256)]
    merge = (table[ord(" ")], table[ord("t")])
    tokens.append(merge[0] + merge[1])
    specials = ["<|im_start|>", "<|im_end|>"]
    tokens.extend(specials)
    normal, control = gguf.TokenType.NORMAL, gguf.TokenType.CONTROL
    types = [normal] * (len(tokens) - len(specials)) + [control] * len(specials)
    n_vocab = len(tokens)
    head_kv = n_head_kv or n_head

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(head_kv)
    writer.add_block_count(n_layer)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{merge[0]} {merge[1]}"])
    writer.add_bos_token_id(n_vocab - 2)
    writer.add_eos_token_id(n_vocab - 1)
    writer.add_add_bos_token(False)
    if chat_template:
        writer.add_chat_template(chat_template)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    head_dim = n_embd // n_head
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # small output weights: near-uniform logits, so sampling wanders instead of sticking to one token
    writer.add_tensor("output.weight", weight(n_vocab, n_embd) * 0.1)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_bench_gguf(path: str | Path, *, seed: int = 0, n_ctx: int = 4096) -> Path:
    """Write a ~26M-parameter random-weight llama GGUF (~100 MB, about a second to write).

    Big enough that prefill takes measurable time on a CPU (a 1,000-token prompt takes on the order of
    a second), so benchmarks can compare cold and cached prompts; the vocabulary is the same byte-level
    one, so a 1,000-character prompt is about 1,000 tokens.
    """
    return write_tiny_gguf(
        path, n_embd=512, n_layer=8, n_head=8, n_ff=1408, n_ctx=n_ctx, seed=seed, name="tessera-bench"
    )
