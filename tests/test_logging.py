"""Quiet by default, progress when asked, and no bare print in the library."""

import ast
import logging
from pathlib import Path

import pytest

from skfusemix import FuseMixAligner
from skfusemix._logging import logger as skfusemix_logger
from skfusemix.datasets import make_paired_latents

PACKAGE = Path(__file__).parents[1] / "skfusemix"
# The command line writes its output to stdout; demo.py still prints its data
# summary line (to move to logging when the demo settles).
MAY_PRINT = {"cli.py", "demo.py"}


def _fit(verbose):
    Zx, Zy = make_paired_latents(n_samples=64, random_state=0)
    return FuseMixAligner(
        n_components=8,
        n_layers=1,
        batch_size=16,
        max_epochs=2,
        random_state=0,
        verbose=verbose,
    ).fit(Zx, Zy)


@pytest.fixture
def clean_logger():
    handlers, level = list(skfusemix_logger.handlers), skfusemix_logger.level
    yield
    skfusemix_logger.handlers[:] = handlers
    skfusemix_logger.setLevel(level)


def test_fit_is_quiet_by_default(capfd, clean_logger):
    _fit(verbose=0)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_1_shows_a_progress_bar_with_pairs_per_second(capfd, clean_logger):
    _fit(verbose=1)
    err = capfd.readouterr().err
    assert "FuseMix fit" in err and "pairs_s" in err and "loss" in err


def test_verbose_2_logs_one_line_per_epoch(caplog, clean_logger):
    with caplog.at_level(logging.INFO, logger="skfusemix"):
        _fit(verbose=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "skfusemix"]
    assert len(lines) == 3  # where the latents live, then one line per epoch
    assert lines[0].startswith("FuseMix fit on cpu: 64 pairs held on the device")
    assert lines[1].startswith("epoch 1/2") and "pairs/s" in lines[2]


def test_no_bare_print_in_the_library():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in MAY_PRINT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"print() in the library: {offenders}"
