"""Every example in examples/ runs (keeps them true to the code)."""

import runpy
import shutil
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))
#: Examples that take minutes: the full OpenMoji demo (two FuseMix fits on 3,201
#: pairs of 1,280-d latents, and the encoding on a first run).  Marked slow: the
#: README's quick test command leaves them out, CI runs them in a second step,
#: and tests/test_demo.py checks the demo's code on stand-in data in seconds.
#: The one-sided example also synthesises and encodes ~1,900 spoken names
#: (espeak-ng + Whisper) on a first run, and fits three aligners.
SLOW = {"plot_openmoji_demo.py", "plot_one_sided_binding.py"}
#: Examples that synthesise speech with the espeak-ng program.
NEEDS_ESPEAK = {"plot_one_sided_binding.py"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p
        for p in EXAMPLES
    ],
    ids=lambda p: p.name,
)
def test_example_runs(path, capsys):
    if path.name in NEEDS_ESPEAK and shutil.which("espeak-ng") is None:
        pytest.skip("needs the espeak-ng program (apt-get install espeak-ng)")
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip()


def test_there_are_examples():
    assert EXAMPLES
