"""docs/architecture.md draws the package as it is: one line per module, with the first line of its docstring."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tipsplit"
DOC = ROOT / "docs" / "architecture.md"
LAYERS = ["domain", "blink", "store", "services", "runtime", "http", "cli", "sim"]
SKIPPED = {"__init__.py", "__main__.py"}


def _summary(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return docstring.strip().split("\n")[0]


def _tree(folder: Path, indent: str = "") -> list[str]:
    lines = [
        f"{indent}{module.name:<{26 - len(indent)}}{_summary(module)}".rstrip()
        for module in sorted(folder.glob("*.py"))
        if module.name not in SKIPPED
    ]
    packages = [sub for sub in folder.iterdir() if (sub / "__init__.py").exists()]
    packages.sort(key=lambda sub: (LAYERS.index(sub.name) if sub.name in LAYERS else len(LAYERS), sub.name))
    for sub in packages:
        lines.append(f"{indent}{sub.name + '/':<{26 - len(indent)}}{_summary(sub / '__init__.py')}".rstrip())
        lines.extend(_tree(sub, indent + "  "))
    return lines


def _documented() -> list[str]:
    match = re.search(r"## Layout\n.*?```text\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, "docs/architecture.md has no '## Layout' section with a ```text block"
    return match.group(1).rstrip("\n").split("\n")


def test_the_layout_in_the_docs_is_the_package_as_it_is() -> None:
    expected = _tree(PACKAGE)
    assert _documented() == expected, "paste this into docs/architecture.md's Layout block:\n" + "\n".join(expected)


def test_every_module_says_why_it_exists() -> None:
    missing = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if not _summary(path) and path.name != "__main__.py"]
    assert missing == []
