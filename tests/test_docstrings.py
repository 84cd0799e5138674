"""Every public class and function has a numpydoc docstring with a runnable example
(the examples themselves run as doctests: `--doctest-modules` in pyproject.toml)."""

import importlib
import inspect

import pytest
from helpers import PUBLIC_MODULES


def _public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("name, obj", list(_public_objects()), ids=lambda v: str(v))
def test_public_object_has_numpydoc_docstring_with_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Examples\n--------" in doc and ">>>" in doc, f"{name} has no example"
    if inspect.isfunction(obj) and inspect.signature(obj).parameters:
        assert "Parameters\n----------" in doc, f"{name} documents no parameters"
