"""The house's arrows run one way: faces → job runner → core → features → images/files.

Each module of the package has a floor below (``RANK``); a module may import only modules of a
lower floor, or its own sub-package (``cli.*`` among themselves). The test reads every import
statement (also those inside functions) from the source, so an arrow that runs up fails here
before it tangles the rooms.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "painterly"

#: Floor of each room, bottom (0) to top. Sub-packages (cli, web) are one room each.
RANK: dict[str, int] = {
    # below: files, tables, pixels, options
    "files": 0,
    "layers": 0,
    "sheet": 0,
    "config": 1,
    "turns": 1,
    "memory": 2,
    "recipe": 2,
    "images": 3,
    "color": 4,
    "plot": 4,
    "masks": 5,
    "flow": 4,
    "media": 4,
    # features: where the numbers come from, the kernels, the network
    "weights": 4,
    "winograd": 4,
    "vgg": 5,
    "kernels": 6,
    # core: the maths
    "losses": 7,
    "events": 7,
    "objective": 8,
    "optimise": 9,
    "tiles": 9,
    "ladder": 10,
    "transfer": 11,
    # the job runner
    "checkpoint": 12,
    "job": 13,
    # faces (workers: the scheduling under batch and video)
    "api": 14,
    "workers": 14,
    "batch": 15,
    "video": 15,
    "web": 15,
    "cli": 16,
    "__main__": 17,
}


def _room(module: str) -> str:
    """``painterly.cli.stylize`` → ``cli``; ``painterly.job`` → ``job``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every painterly import in a file (read as module ``name``,
    by default the one its path says)."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            targets = [target]
            if not node.module:  # from . import x, y
                targets = [f"{target}.{alias.name}" for alias in node.names]
            found += [(node.lineno, t) for t in targets if t.startswith("painterly")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("painterly")]
    return found


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_has_a_floor() -> None:
    rooms = {_room(_module_name(p)) for p in _sources()} - {"__init__"}
    assert sorted(rooms - set(RANK)) == [], "place new modules in RANK"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downwards(path: Path) -> None:
    importer = _room(_module_name(path))
    if importer == "__init__":  # the package's lazy front door names everything
        return
    upward = []
    for line, target in _imports(path):
        room = _room(target)
        if room == importer:
            continue  # within one room (cli.stylize → cli.common)
        if room == "__init__" or RANK[room] >= RANK[importer]:
            upward.append(f"line {line}: {importer} imports {room}")
    assert upward == []


def test_the_walk_sees_an_upward_arrow(tmp_path: Path) -> None:
    """The checker itself: imports from a higher floor are found, relative and absolute."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from .cli import main\nimport painterly.job\n\ndef f():\n    from . import vgg\n"
    )
    found = [t for _, t in _imports(probe, "painterly.images")]
    assert sorted(found) == ["painterly.cli", "painterly.job", "painterly.vgg"]


def test_decoding_an_image_loads_no_network() -> None:
    code = (
        "import sys, painterly.images, painterly.config, painterly.recipe\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('painterly'))\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not loaded & {"painterly.vgg", "painterly.weights", "painterly.transfer"}, loaded
