"""The task suite of ``tessera bench tasks``: 32 tasks whose answers a program can check.

The tasks cover the coder (computations a small model cannot do from memory), the retriever (facts that
exist only in a small knowledge base the benchmark writes and ingests), OCR (images the benchmark
renders), TTS (the answer must name a WAV file that exists) and the general specialist. They have one,
two, or three and more steps, run in parallel or chained. Each names the specialist kinds a person would
give its parts to (``coder``, ``general``, ``retriever``, ``tool:ocr``, ``tool:tts``).

The facts in the knowledge base and the texts in the images are made up, so no model knows them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DOCS", "IMAGES", "SUITE", "WAV_PATH", "Check", "SuiteTask", "TaskOutcome", "check_answer"]

DOCS = {
    "handbook/leave.md": "# Leave\n\nEvery employee of Orvell Labs gets 27 days of paid leave a year. "
    "Unused days carry over until the end of April.\n",
    "handbook/remote.md": "# Remote access\n\nTo reach internal services from home, install the Tunnelbee "
    "client and import the profile from the IT portal. Access is granted after the security course.\n",
    "handbook/oncall.md": "# On call\n\nThe on-call engineer answers a page within 12 minutes. Rotations "
    "change every Tuesday at 09:30.\n",
    "handbook/expenses.md": "# Expenses\n\nMeals are reimbursed up to 45 euros a day while travelling. "
    "Receipts go through the Ledgerly app within 30 days.\n",
    "handbook/office.md": "# Office\n\nThe Orvell Labs office is on the 7th floor of the Halden building. "
    "The kitchen espresso machine is descaled every Friday.\n",
    "handbook/release.md": "# Releases\n\nProduction deploys need 3 approvals; hotfixes need the "
    "incident lead's sign-off. The release train leaves every Thursday.\n",
}
"""The knowledge base the benchmark ingests (path -> markdown)."""

IMAGES = {
    "invoice.png": ["INVOICE 4471", "Total due: 318 EUR"],
    "note.png": ["Meeting moved to Room 12"],
    "order.png": ["Order 37"],
    "sign.png": ["Please close the door"],
}
"""The images the benchmark renders (file -> lines of text)."""


@dataclass(frozen=True)
class Check:
    """What a correct answer holds: every ``all_of`` item, at least one of each ``any_of`` group, a WAV."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()
    wav: bool = False


@dataclass(frozen=True)
class SuiteTask:
    """One task: the text (``{images}`` stands for the image folder), its check, and its shape."""

    id: str
    text: str
    check: Check
    kinds: frozenset[str]
    """The specialist kinds a person would give its parts to."""
    steps: int
    shape: str
    """``single``, ``parallel`` or ``chain``."""
    tags: tuple[str, ...] = field(default=())


def _t(
    id: str,
    text: str,
    kinds: str,
    steps: int,
    shape: str,
    *,
    wav: bool = False,
    all_of: Sequence[str] = (),
    any_of: Sequence[Sequence[str]] = (),
) -> SuiteTask:
    check = Check(tuple(all_of), tuple(tuple(group) for group in any_of), wav)
    return SuiteTask(id, text, check, frozenset(kinds.split()), steps, shape)


SUITE: tuple[SuiteTask, ...] = (
    # one step: the coder
    _t(
        "sum-squares",
        "What is the sum of the squares of the integers from 1 to 50?",
        "coder",
        1,
        "single",
        all_of=["42925"],
    ),
    _t("primes-1000", "How many prime numbers are there below 1000?", "coder", 1, "single", all_of=["168"]),
    _t("pow-2-40", "What is 2 to the power of 40?", "coder", 1, "single", all_of=["1099511627776"]),
    _t("factorial-17", "What is 17 factorial?", "coder", 1, "single", all_of=["355687428096000"]),
    _t(
        "count-s",
        "How many times does the letter s occur in 'mississippi sassafras'?",
        "coder",
        1,
        "single",
        all_of=["8"],
    ),
    _t(
        "fib-30",
        "What is the 30th Fibonacci number, counting F1 = F2 = 1?",
        "coder",
        1,
        "single",
        all_of=["832040"],
    ),
    _t("gcd", "What is the greatest common divisor of 1071 and 462?", "coder", 1, "single", all_of=["21"]),
    _t(
        "days-between",
        "How many days are there from 2024-01-01 to 2024-03-01?",
        "coder",
        1,
        "single",
        all_of=["60"],
    ),
    # one step: the knowledge base
    _t(
        "kb-leave",
        "According to our handbook, how many days of paid leave does an employee get?",
        "retriever",
        1,
        "single",
        all_of=["27"],
    ),
    _t(
        "kb-vpn",
        "What client does our handbook say to install for remote access?",
        "retriever",
        1,
        "single",
        all_of=["Tunnelbee"],
    ),
    _t(
        "kb-oncall",
        "Within how many minutes must our on-call engineer answer a page, per the handbook?",
        "retriever",
        1,
        "single",
        all_of=["12"],
    ),
    _t(
        "kb-meals",
        "How much are meals reimbursed per day when travelling, according to the handbook?",
        "retriever",
        1,
        "single",
        all_of=["45"],
    ),
    # one step: OCR
    _t(
        "ocr-invoice",
        "Read the text in the image {images}/invoice.png.",
        "tool:ocr",
        1,
        "single",
        all_of=["4471"],
    ),
    _t(
        "ocr-note",
        "What does the note in {images}/note.png say?",
        "tool:ocr",
        1,
        "single",
        all_of=["Room 12"],
    ),
    # one step: TTS
    _t("tts-hello", "Say 'good morning team' aloud as a WAV file.", "tool:tts", 1, "single", wav=True),
    # one step: general
    _t(
        "capital",
        "What is the capital of France? Answer in one word.",
        "general",
        1,
        "single",
        all_of=["Paris"],
    ),
    _t("translate", "Translate 'thank you' into Spanish.", "general", 1, "single", all_of=["gracias"]),
    _t(
        "opposite",
        "What is the opposite of the word 'cold'? Answer in one word.",
        "general",
        1,
        "single",
        any_of=[["hot", "warm"]],
    ),
    # two steps, parallel
    _t(
        "calc-and-capital",
        "Compute 123 * 457 with Python, and tell me the capital of Italy.",
        "coder general",
        2,
        "parallel",
        all_of=["56211", "Rome"],
    ),
    _t(
        "pow-and-kb",
        "What is 2**20, and which client does our handbook say to install for remote access?",
        "coder retriever",
        2,
        "parallel",
        all_of=["1048576", "Tunnelbee"],
    ),
    _t(
        "fib-and-explain",
        "Compute the 20th Fibonacci number with Python, then explain in one sentence what "
        "the Fibonacci sequence is.",
        "coder general",
        2,
        "parallel",
        all_of=["6765"],
        any_of=[["sum", "add"]],
    ),
    _t(
        "ocr-and-kb",
        "Read the text in {images}/sign.png, and tell me on which floor the Orvell Labs office "
        "is according to the handbook.",
        "tool:ocr retriever",
        2,
        "parallel",
        all_of=["close the door", "7"],
    ),
    # two steps, chained
    _t(
        "ocr-then-say",
        "Read the text in {images}/note.png and then say it aloud.",
        "tool:ocr tool:tts",
        2,
        "chain",
        wav=True,
    ),
    _t(
        "triangular-sentence",
        "Compute the 10th triangular number with Python, then write one sentence that uses that number.",
        "coder general",
        2,
        "chain",
        all_of=["55"],
    ),
    _t(
        "ocr-square",
        "Read the order number in {images}/order.png, then compute its square with Python.",
        "tool:ocr coder",
        2,
        "chain",
        all_of=["1369"],
    ),
    _t(
        "kb-weeks",
        "Look up in the handbook how many days of paid leave an employee gets, then compute with "
        "Python how many full 5-day weeks that is.",
        "retriever coder",
        2,
        "chain",
        all_of=["5"],
    ),
    _t(
        "calc-then-say",
        "Compute 37 * 3 with Python, then say the result aloud.",
        "coder tool:tts",
        2,
        "chain",
        wav=True,
        all_of=["111"],
    ),
    _t(
        "kb-approvals-say",
        "Find in the handbook how many approvals a production deploy needs, then say that number aloud.",
        "retriever tool:tts",
        2,
        "chain",
        wav=True,
        all_of=["3"],
    ),
    # three or more steps
    _t(
        "three-calcs",
        "Compute 7 * 6 with Python, compute 9 * 8 with Python, then add the two results.",
        "coder",
        3,
        "chain",
        all_of=["114"],
    ),
    _t(
        "ocr-count-say",
        "Read the text in {images}/sign.png, count its words with Python, then say the count aloud.",
        "tool:ocr coder tool:tts",
        3,
        "chain",
        wav=True,
        all_of=["4"],
    ),
    _t(
        "kb-kb-sum",
        "From the handbook, find how many days of paid leave an employee gets and within how "
        "many minutes the on-call engineer answers a page, then add the two numbers with Python.",
        "retriever coder",
        3,
        "chain",
        all_of=["39"],
    ),
    _t(
        "three-parallel",
        "Compute 2**10 with Python, tell me the capital of Japan, and read the text in {images}/invoice.png.",
        "coder general tool:ocr",
        3,
        "parallel",
        all_of=["1024", "Tokyo", "4471"],
    ),
)

_NUMBER_SEPARATOR = re.compile(r"(?<=\d)[,\u202f\u00a0_](?=\d{3}\b)")
WAV_PATH = re.compile(r"(/[^\s'\"`()]+\.wav)\b")


def _normal(text: str) -> str:
    return " ".join(_NUMBER_SEPARATOR.sub("", text).lower().split())


def _has(text: str, wanted: str) -> bool:
    """``wanted`` in ``text`` (case and spacing aside); a number must not be part of a longer number."""
    norm, item = _normal(text), _normal(wanted)
    if item.replace(".", "").isdigit():
        return re.search(rf"(?<![\d.]){re.escape(item)}(?!\d|\.\d)", norm) is not None
    return item in norm


def check_answer(check: Check, answer: str, files: list[str] | None = None) -> tuple[bool, str]:
    """Whether ``answer`` passes ``check`` (``files``: paths the run reported, e.g. TTS artifacts)."""
    for item in check.all_of:
        if not _has(answer, item):
            return False, f"missing {item!r}"
    for group in check.any_of:
        if not any(_has(answer, item) for item in group):
            return False, f"missing one of {list(group)}"
    if check.wav:
        paths = [*WAV_PATH.findall(answer), *(files or [])]
        if not any(p.endswith(".wav") and Path(p).is_file() and Path(p).stat().st_size > 44 for p in paths):
            return False, "no WAV file that exists"
    return True, ""


@dataclass
class TaskOutcome:
    """One task on one system."""

    id: str
    system: str
    correct: bool
    why: str = ""
    seconds: float = 0.0
    planning_s: float | None = None
    tokens: int = 0
    plan_first_try: bool | None = None
    right_specialists: bool | None = None
    specialists: list[str] = field(default_factory=list)
    answer: str = ""
    error: str | None = None
