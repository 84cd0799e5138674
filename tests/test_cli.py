"""The command line's parsing and error behaviour (the demo itself is the README's job)."""

import pytest

from skfusemix.__main__ import main


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Procrustes and ASIF" in out and "--synthetic" in out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--seed", "not-a-number"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
