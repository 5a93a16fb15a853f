"""Concurrency per model, not one run-wide cap: independent subtasks on function models all run at once,
and local llama.cpp models share the cores (a generation holds as many as it has threads)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from tessera import Team, TeamConfig
from tessera.models._cores import CORES, CoreBudget

HERE = "tests.graphs.test_concurrency"


def six(messages: list[dict[str, Any]], **_: Any) -> str:
    subtasks = [{"id": f"s{k}", "specialist": "worker", "instruction": f"part {k}"} for k in range(1, 7)]
    return json.dumps({"subtasks": subtasks})


def nap(messages: list[dict[str, Any]], **_: Any) -> str:
    time.sleep(0.4)
    return "done"


def test_six_independent_subtasks_on_function_models_run_at_once_by_default(tmp_path: Path) -> None:
    config = TeamConfig.from_dict(
        {
            "name": "wide",
            "state_dir": str(tmp_path),
            "models": {
                "planner": {"backend": "function", "callable": f"{HERE}:six"},
                "worker": {"backend": "function", "callable": f"{HERE}:nap"},
            },
            "planner": {"model": "planner"},
            "specialists": {"worker": {"description": "naps", "model": "worker"}},
            "memory": {"long_term": False},
        }
    )
    assert config.runtime.max_concurrency is None
    result = Team(config).run("six parts")
    spans = [(s.started or 0, s.ended or 0) for s in result.subtasks]
    assert len(spans) == 6 and all(s.status == "done" for s in result.subtasks)
    # one wave: every subtask started before any of them ended
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def overlaps(budget: CoreBudget, cores: int) -> bool:
    """Whether two threads holding ``cores`` each are ever inside the budget at the same time."""
    inside, most = [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with budget.hold(cores):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.2)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most[0] == 2


def test_generations_take_turns_when_their_threads_would_oversubscribe_the_cores() -> None:
    budget = CoreBudget(2)
    assert not overlaps(budget, 2)  # two 2-thread models on 2 cores: one after the other
    assert overlaps(budget, 1)  # two 1-thread models: side by side
    assert not overlaps(budget, 8)  # more threads than cores count as the whole budget
    assert budget.used == 0


def test_a_llama_generation_holds_its_threads_share_of_the_cores(tiny_gguf: Path) -> None:
    from tessera.models.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel(model_id="m", path=tiny_gguf, n_ctx=512, n_threads=1, temperature=1.0)
    model.load()
    seen: list[int] = []
    worker = threading.Thread(target=lambda: model.invoke("tell me a story", max_tokens=200, seed=3))
    worker.start()
    while worker.is_alive():
        seen.append(CORES.used)
        time.sleep(0.0005)
    worker.join()
    assert 1 in seen and max(seen) <= CORES.total and CORES.used == 0
