from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import tessera
from tests.conftest import REPO


def test_every_public_name_resolves() -> None:
    for name in tessera.__all__:
        assert getattr(tessera, name) is not None


def test_sub_packages_exist() -> None:
    for sub in ("agents", "tools", "memory", "graphs", "models"):
        importlib.import_module(f"tessera.{sub}")


def third_party_imports(package: Path) -> dict[str, set[str]]:
    """``{top-level module: files importing it}`` for every import of another package under ``package``
    (at the top of a module, inside functions and under ``TYPE_CHECKING`` alike)."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != package.name and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.relative_to(package.parent).as_posix())
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> dict[str, str]:
    """``{distribution: "core" or the extra declaring it}`` from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_normalized(Requirement(r).name): "core" for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            declared.setdefault(_normalized(Requirement(requirement).name), extra)
    return declared


def test_every_third_party_import_is_declared_in_pyproject() -> None:
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    undeclared = []
    for module, files in sorted(third_party_imports(REPO / "tessera").items()):
        distributions = {_normalized(d) for d in providers.get(module, [])}
        if not distributions & declared.keys():
            where = ", ".join(sorted(files)[:3])
            undeclared.append(f"{module} (from {sorted(distributions) or 'nothing installed'}), in {where}")
    assert undeclared == [], "imported but neither a dependency nor in an extra:\n" + "\n".join(undeclared)


def test_the_embedder_and_torch_are_an_extra_not_the_core() -> None:
    declared = declared_distributions()
    assert declared["sentence-transformers"] == "embed"
    assert declared["torch"] == "embed"
    assert declared["chromadb"] == "core" and declared["bm25s"] == "core"


def test_setup_installs_every_extra_ci_needs() -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installed = re.search(r'pip install -q -e "\.\[([^\]]+)\]"', (REPO / "scripts/setup.sh").read_text())
    assert installed is not None
    assert set(installed.group(1).split(",")) == extras


def test_package_data_globs_match_files() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, globs in data.items():
        for pattern in globs:
            assert list((REPO / package.replace(".", "/")).glob(pattern)), (
                f"{package}: {pattern} matches nothing"
            )


# Runs in a fresh interpreter where sentence-transformers and torch cannot be imported, as after a plain
# `pip install tessera`: ingesting and searching lexically work; a sentence-transformers embedder fails
# with one line naming the extra, both when the knowledge base opens and when `tessera validate` checks.
WITHOUT_EMBED = """
import sys
from pathlib import Path

for name in ("sentence_transformers", "torch"):
    sys.modules[name] = None  # `import torch` now raises ImportError

from tessera.cli._config_check import loadable_problems
from tessera.config import load_team
from tessera.errors import MissingDependencyError
from tessera.memory.ingest import ingest
from tessera.memory.knowledge import KnowledgeBase

root = Path(sys.argv[1])
(root / "docs").mkdir()
(root / "docs" / "install.md").write_text("# Install\\n\\nRun pip install tessera to install the package.\\n")
(root / "docs" / "notes.md").write_text("# Notes\\n\\nThe parser team meets on Tuesdays.\\n")
with KnowledgeBase(root / "memory", mode="lexical", writer=True) as kb:
    ingest(kb, [root / "docs"], progress=False)
    hits = kb.search("how do I install it", 3)
print("lexical:", [Path(h.source).name for h in hits])

team = load_team("configs/offline.yaml")
memory = team.memory.model_copy(update={"embedder": "sentence-transformers/all-MiniLM-L6-v2", "retrieval": "dense"})
team = team.model_copy(update={"state_dir": root / "state", "memory": memory})
print("validate:", [p for p in loadable_problems(team) if p.startswith("memory.")])
try:
    KnowledgeBase.for_team(team)
except MissingDependencyError as exc:
    print("dense:", exc)
"""


def test_lexical_retrieval_works_without_the_embed_extra(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBED, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "lexical: ['install.md']"
    hint = 'need the embed extra: pip install "tessera[embed]"'
    assert (
        lines[1].startswith("validate: ['memory.embedder: sentence-transformers embedders ")
        and hint in lines[1]
    )
    assert lines[2].startswith("dense: sentence-transformers embedders ") and hint in lines[2]
    assert len(lines) == 3
