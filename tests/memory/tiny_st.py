"""Build a tiny random-weight sentence-transformers model from scratch, offline, in a few seconds.

No embedding model can be downloaded on CI machines, so tests (and benchmarks) build a real one: a
WordPiece tokenizer trained on fixed text (so the model never changes when the repository does), a
two-layer BERT with seeded random weights,
and mean pooling. Untrained, it still maps texts that share words to nearby vectors (mean pooling over
shared token embeddings), which is enough to test nearest-neighbour behaviour end to end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HIDDEN = 64
# Always in the training text, so these words are whole tokens whatever the repository holds.
_SEED_TEXT = [
    "chroma is a vector store for embeddings and documents",
    "the cat sat on the mat in the garden",
    "a bubblewrap sandbox limits processes memory and network",
    "the planner writes a plan: a graph of subtasks for specialists",
    "download a model file from the hub into the cache",
    "the weather today is sunny with a light wind",
]
# More fixed text, for a vocabulary that covers the words tests use. Never read repository files here:
# the model must not change when the README or the code does.
_MORE_TEXT = [
    "install the package with pip and upgrade it later",
    "parse the config file and split the source into tokens",
    "the parser team meets on tuesdays to read meeting notes",
    "the deploy window is tuesday afternoon and deploys need a reviewer",
    "dashboards and alerts page the on call engineer",
    "boil pasta for nine minutes in salted water",
    "storage keeps embeddings on disk in a database",
    "retrieval ranks chunks of documents by lexical and dense scores",
    "a team of small models plans tasks and runs subtasks in parallel",
    "the coder writes python code and runs its tests in a sandbox",
    "ocr reads text from images and speech synthesis writes audio",
    "memory remembers facts and summaries across sessions",
    "the quick brown fox jumps over the lazy dog",
    "write a haiku about tea and translate it into french",
    "what is the answer to the question in the guide",
]


def build_tiny_sentence_transformer(path: Path, *, vocab_size: int = 2000, seed: int = 0) -> Path:
    """Write a sentence-transformers model folder at ``path`` and return ``path``.

    Sets ``HF_HUB_OFFLINE=1``: nothing here needs the hub.

    Args:
        path: The folder to create (its parent must exist).
        vocab_size: The WordPiece vocabulary size to train.
        seed: The torch seed for the random BERT weights.

    Returns:
        ``path``, loadable with ``SentenceTransformer(str(path))``; its vectors have 64 dimensions.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="tiny-bert-", dir=path.parent) as scratch:
        wordpiece = BertWordPieceTokenizer(lowercase=True)
        wordpiece.train_from_iterator(_corpus(), vocab_size=vocab_size, min_frequency=1, show_progress=False)
        tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=True)
        tokenizer.add_special_tokens(
            {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
        )
        tokenizer.add_special_tokens({"mask_token": "[MASK]"})
        tokenizer.model_max_length = 256
        tokenizer.save_pretrained(scratch)

        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=256,
        )
        BertModel(config).save_pretrained(scratch)

        Transformer, Pooling = _module_classes()
        transformer = Transformer(scratch, max_seq_length=256)
        pooling = Pooling(HIDDEN, "mean")
        SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(path))
    return path


def _module_classes() -> tuple[Any, Any]:
    """sentence-transformers' Transformer and Pooling modules (moved in version 6)."""
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer
    return Transformer, Pooling


def _corpus() -> Iterator[str]:
    """Fixed sentences only (see ``_MORE_TEXT``)."""
    yield from _SEED_TEXT
    yield from _MORE_TEXT
