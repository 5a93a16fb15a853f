"""Word error rate of whisper-base (the ``asr`` tool's default) on five sentences spoken by espeak-ng.

Runs :func:`tessera.bench.asr.measure` with the default ``tools.asr`` settings (int8, beam 5, 2 threads,
language detected) and the default ``tools.tts`` voice. The target is a word error rate of at most 15%.

    python benchmarks/asr.py [--language en] [--out benchmarks/results/asr.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _stats import write_results

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default=None, help="Spoken language (default: detected per file).")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "asr.json")
    args = parser.parse_args()

    from tessera.bench.asr import measure
    from tessera.config import AsrConfig

    report = measure(asr=AsrConfig(language=args.language))
    report["target_wer"] = TARGET
    report["meets_target"] = report["wer"] <= TARGET
    for row in report["sentences"]:
        print(f"{row['errors']} errors  {row['reference']!r} -> {row['heard']!r}  ({row['seconds']:.2f}s)")
    wer, errors, words = report["wer"], report["errors"], report["words"]
    print(f"WER {wer:.1%} ({errors}/{words} words), model load {report['load_s']}s")
    write_results(args.out, report)
    if not report["meets_target"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
