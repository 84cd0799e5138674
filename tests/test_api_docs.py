"""The API reference (docs/api.rst) lists every public name of every public module."""

import importlib
import re
from pathlib import Path

import pytest
from helpers import PUBLIC_MODULES

API_RST = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


_CURRENTMODULE = re.compile(r"^\.\. (?:py:)?currentmodule:: (\S+)\s*$")
_DIRECTIVE = re.compile(r"^\.\. (?:py:)?(\w+)::\s*(\S*)\s*$")
_ENTRY = re.compile(r"^ {3}([A-Za-z_][\w.]*)\s*$")
_DOCUMENTING = {"autodata", "data", "autofunction", "autoclass", "autoexception"}


def documented_names(text):
    """Fully qualified names listed in an rst file: the entries of every
    ``autosummary`` table and the targets of auto*/data directives, each
    resolved against the ``currentmodule`` in force."""
    names, module, in_autosummary = set(), "", False
    for line in text.splitlines():
        if match := _CURRENTMODULE.match(line):
            module, in_autosummary = match[1], False
        elif match := _DIRECTIVE.match(line):
            in_autosummary = match[1] == "autosummary"
            if match[1] in _DOCUMENTING and match[2]:
                names.add(_qualify(module, match[2]))
        elif in_autosummary and (match := _ENTRY.match(line)):
            names.add(_qualify(module, match[1]))
        elif line and not line.startswith(" "):
            in_autosummary = False
    return names


def _qualify(module, name):
    if module and not name.startswith(module.split(".")[0] + "."):
        return f"{module}.{name}"
    return name


def _resolve(qualified):
    """The object a dotted name refers to (longest importable module prefix)."""
    parts = qualified.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualified)


def test_documented_names_parses_autosummary_and_currentmodule():
    text = (
        ".. currentmodule:: pkg.sub\n\n"
        ".. autosummary::\n   :toctree: generated/\n\n   Foo\n   inner.bar\n\n"
        "Heading\n=======\n\n   NotAnEntry\n\n"
        ".. autodata:: LIMIT\n\n.. autodata:: pkg.VERSION\n"
    )
    assert documented_names(text) == {
        "pkg.sub.Foo",
        "pkg.sub.inner.bar",
        "pkg.sub.LIMIT",
        "pkg.VERSION",
    }


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    module = importlib.import_module(module_name)
    documented = documented_names(API_RST.read_text(encoding="utf-8"))
    documented_objects = []
    for name in sorted(documented):
        try:  # a wrong entry fails test_every_api_entry_exists, not this test
            documented_objects.append(_resolve(name))
        except (ImportError, AttributeError):
            pass
    missing = [
        name
        for name in module.__all__
        if f"{module_name}.{name}" not in documented
        # re-exported elsewhere: the same object documented under its home module
        and not any(getattr(module, name) is obj for obj in documented_objects)
    ]
    assert not missing, (
        f"{module_name}.__all__ names missing from docs/api.rst: {missing}"
    )


def test_every_api_entry_exists():
    """No entry of the reference names an object that is not there."""
    for name in documented_names(API_RST.read_text(encoding="utf-8")):
        _resolve(name)


@pytest.mark.slow
def test_landing_page_example_prints_what_the_page_says(capsys):
    """The 5-line example on the first screen of docs/index.md, run as shown,
    prints the held-out score the page quotes (to 0.02: thread counts and BLAS
    builds move the last digits)."""
    text = (API_RST.parent / "index.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)[1]
    quoted = re.search(r"```text\nheld-out mean recall@1: ([0-9.]+)\n```", text)[1]
    exec(compile(code, "index.md", "exec"), {})
    printed = re.fullmatch(
        r"held-out mean recall@1: ([0-9.]+)\n", capsys.readouterr().out
    )
    assert printed, "the example prints one line"
    assert abs(float(printed[1]) - float(quoted)) <= 0.02
