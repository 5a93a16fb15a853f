from __future__ import annotations

from pathlib import Path

import pytest

from tessera.errors import ModelLoadError
from tessera.models._gguf import read_gguf


def test_reads_the_header_of_a_generated_model(tiny_gguf: Path) -> None:
    info = read_gguf(tiny_gguf)
    assert info.architecture == "llama"
    assert info.context_length == 2048
    assert info.data_end == tiny_gguf.stat().st_size
    assert info.metadata["tokenizer.ggml.model"] == "gpt2"
    assert "<|im_start|>" in info.metadata["tokenizer.chat_template"]


def test_reads_the_shared_stories_model(stories_gguf: Path) -> None:
    info = read_gguf(stories_gguf)
    assert info.arch_value("block_count") == 5
    assert info.data_end == stories_gguf.stat().st_size


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        read_gguf(path)


def test_wrong_version(tmp_path: Path, tiny_gguf: Path) -> None:
    path = tmp_path / "v9.gguf"
    data = bytearray(tiny_gguf.read_bytes())
    data[4:8] = (9).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="unsupported GGUF version 9"):
        read_gguf(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a file"):
        read_gguf(tmp_path)
