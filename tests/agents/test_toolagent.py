"""Tool agents through a full ``tessera run``: OCR with real tesseract, then TTS with real espeak-ng."""

from __future__ import annotations

import array
import json
import shutil
import wave
from pathlib import Path

import pytest

from ..conftest import run_cli, write_team

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LINES = [
    "The quick brown fox jumps over",
    "the lazy dog near the river bank",
    "while seven owls watch quietly",
]


def render(path: Path) -> Path:
    pil = pytest.importorskip("PIL", reason='OCR tests need pillow: pip install "tessera[ocr]"')
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        pytest.skip(f"{FONT} is missing (apt-get install fonts-dejavu-core)")
    assert pil is not None
    font = ImageFont.truetype(str(FONT), 32)
    image = Image.new("RGB", (900, 200), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(LINES):
        draw.text((20, 20 + 55 * i), line, font=font, fill="black")
    image.save(path)
    return path


def cer(reference: str, hypothesis: str) -> float:
    a, b = " ".join(reference.split()), " ".join(hypothesis.split())
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1] / max(1, len(a))


def test_ocr_then_speech_through_a_full_run(tmp_path: Path) -> None:
    for binary in ("tesseract", "espeak-ng"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (bash scripts/setup.sh installs it)")
    image = render(tmp_path / "page.png")
    team_file = write_team(
        tmp_path / "team.yaml",
        {"planner": {"backend": "function", "callable": "tests.agents.custom:plan"}},
        specialists={
            "reader": {"description": "OCR", "kind": "tool", "tool": "ocr"},
            "speaker": {"description": "TTS", "kind": "tool", "tool": "tts"},
        },
    )
    plan = {
        "subtasks": [
            {
                "id": "s1",
                "specialist": "reader",
                "instruction": f"Read the text in {image}",
                "depends_on": [],
            },
            {"id": "s2", "specialist": "speaker", "instruction": "Say: {{s1}}", "depends_on": ["s1"]},
        ]
    }
    out = run_cli("run", "--team", str(team_file), "--thread", "doc1", "--json", "PLAN " + json.dumps(plan))
    assert out.returncode == 0, out.stderr
    results = {s["id"]: s for s in json.loads(out.stdout)["subtasks"]}
    assert results["s1"]["status"] == "done" and results["s2"]["status"] == "done", results
    assert cer("\n".join(LINES), results["s1"]["output"]) <= 0.02, results["s1"]["output"]

    wav = Path(results["s2"]["artifacts"]["path"])
    assert wav.is_file() and wav.parent == tmp_path / "state" / "outputs" / "doc1"
    with wave.open(str(wav)) as f:
        frames = f.readframes(f.getnframes())
        duration = f.getnframes() / f.getframerate()
        assert f.getsampwidth() == 2
    samples = array.array("h", frames)
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    words = sum(len(line.split()) for line in LINES)  # 18 words at 175 wpm: about 6 s
    assert 0.5 * words / 175 * 60 <= duration <= 2.5 * words / 175 * 60, duration
    assert rms > 300, rms
    assert abs(results["s2"]["artifacts"]["duration_s"] - duration) < 0.05
