"""The command line: every command's help, its work, and its errors as one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import test_encoders

from skfusemix import retrieval_report
from skfusemix.cli import load_model, main
from skfusemix.datasets import make_paired_latents

bert_dir = test_encoders.bert_dir  # tiny offline models shared with the encoder tests
vit_dir = test_encoders.vit_dir
whisper_dir = test_encoders.whisper_dir

COMMANDS = {
    "encode": ["--kind", "--model", "--batch-size", "--pooling", "--device"],
    "fit": ["--x", "--y", "--groups", "--out", "--alpha", "--temperature"],
    "evaluate": ["MODEL_DIR", "--x", "--y", "--json", "--ks"],
    "demo": ["--synthetic", "Procrustes and ASIF"],
}


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for word in COMMANDS[command]:
        assert word in out


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["demo", "--seed", "not-a-number"],
        ["encode", "only-input.txt"],
        ["encode", "in.txt", "out.npy", "--kind", "video"],
        ["encode", "in.txt", "out.npy", "--batch-size", "0"],
        ["fit", "--x", "a.npy", "--y", "b.npy"],  # no --out
        ["fit", "--x", "a.npy", "--y", "b.npy", "--out", "m", "--alpha", "lots"],
        ["evaluate", "m", "--x", "a.npy"],  # no --y
        ["evaluate", "m", "--x", "a.npy", "--y", "b.npy", "--bogus"],
        ["fit", "--x", "a.npy", "--y", "b.npy", "--out", "m", "--max-memory", "lots"],
        ["fit", "--x", "a.npy", "--y", "b.npy", "--out", "m", "--max-memory", "-1G"],
        [
            "fit",
            "--x",
            "a.npy",
            "--y",
            "b.npy",
            "--out",
            "m",
            "--storage-dtype",
            "int8",
        ],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.fixture(scope="module")
def latent_files(tmp_path_factory):
    path = tmp_path_factory.mktemp("latents")
    Zx, Zy, groups = make_paired_latents(
        n_samples=80, n_captions=2, return_groups=True, random_state=0
    )
    for name, array in [("zx", Zx), ("zy", Zy), ("groups", groups)]:
        np.save(path / f"{name}.npy", array)
    np.save(path / "short.npy", Zy[:10])
    np.save(path / "flat.npy", Zy[:, 0])
    (path / "not_npy.npy").write_text("hello")
    return {p.stem: str(p) for p in path.iterdir()}


@pytest.fixture(scope="module")
def model_dir(latent_files, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("model") / "model")
    f = latent_files
    argv = ["fit", "--x", f["zx"], "--y", f["zy"], "--groups", f["groups"],
            "--out", out, "--n-components", "8", "--n-layers", "1",
            "--batch-size", "32", "--max-epochs", "2", "--alpha", "0.5",
            "--device", "cpu", "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_fit_streams_latent_files_over_the_memory_budget(tmp_path, caplog):
    from conftest import make_pairs

    Zx, Zy = make_pairs(n=3000)
    np.save(tmp_path / "zx.npy", Zx)
    np.save(tmp_path / "zy.npy", Zy)
    caplog.set_level("INFO", logger="skfusemix")
    argv = ["fit", "--x", str(tmp_path / "zx.npy"), "--y", str(tmp_path / "zy.npy"),
            "--out", str(tmp_path / "m"), "--n-components", "16", "--n-layers", "1",
            "--batch-size", "32", "--max-epochs", "1", "--device", "cpu",
            "--max-memory", "530k", "--storage-dtype", "float16", "-vv"]  # fmt: skip
    assert main(argv) == 0
    assert "streaming 3,000 pairs" in caplog.text
    model = load_model(str(tmp_path / "m"))
    assert model.get_params()["max_memory"] == 530 * 1024
    assert model.get_params()["storage_dtype"] == "float16"


def test_fit_saves_a_model_with_the_given_parameters(model_dir, capsys):
    model = load_model(model_dir)
    params = model.get_params()
    assert (params["n_components"], params["alpha"], params["random_state"]) == (
        8,
        0.5,
        3,
    )
    assert params["dropout"] == 0.6  # unset options keep the estimator's defaults
    assert model.n_iter_ == 2


def test_evaluate_prints_the_report_of_the_saved_model(latent_files, model_dir, capsys):
    f = latent_files
    model = load_model(model_dir)
    Zx, Zy, groups = (np.load(f[k]) for k in ("zx", "zy", "groups"))
    expected = retrieval_report(
        model.transform(Zx), model.transform_y(Zy), groups=groups, ks=(1, 5, 10)
    )
    capsys.readouterr()
    argv = [
        "evaluate",
        model_dir,
        "--x",
        f["zx"],
        "--y",
        f["zy"],
        "--groups",
        f["groups"],
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["direction", "R@1", "R@5", "R@10", "median", "rank"]
    x2y = lines[1].split()
    assert x2y[0] == "x->y"
    assert x2y[1] == f"{expected['x2y_R@1']:.3f}"
    assert x2y[3] == f"{expected['x2y_R@10']:.3f}"
    assert lines[3].startswith(f"rsum {expected['rsum']:.3f}")

    assert main([*argv, "--json", "--ks", "1", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == retrieval_report(
        model.transform(Zx), model.transform_y(Zy), groups=groups, ks=(1, 3)
    )


@pytest.mark.parametrize(
    "argv_of, message",
    [
        (lambda f, m: ["evaluate", m, "--x", "missing.npy", "--y", f["zy"]],
         "--x file 'missing.npy' does not exist"),
        (lambda f, m: ["evaluate", m, "--x", f["zx"], "--y", f["short"]],
         "one row per pair"),
        (lambda f, m: ["evaluate", m, "--x", f["zx"], "--y", f["flat"]],
         "must hold a 2-D array"),
        (lambda f, m: ["evaluate", m, "--x", f["zx"], "--y", f["not_npy"]],
         "not a readable .npy"),
        (lambda f, m: ["evaluate", m, "--x", f["zy"], "--y", f["zy"]],
         "features"),
        (lambda f, m: ["evaluate", m + "-nope", "--x", f["zx"], "--y", f["zy"]],
         "holds no saved model"),
        (lambda f, m: ["fit", "--x", f["zx"], "--y", f["zy"], "--groups", f["short"],
                       "--out", m + "-2"], "must hold a 1-D array"),
        (lambda f, m: ["fit", "--x", f["zx"], "--y", f["zy"], "--alpha", "-1",
                       "--out", m + "-2"], "alpha"),
        (lambda f, m: ["encode", "nowhere/*.png", m + "-z.npy"], "does not exist"),
    ],
)  # fmt: skip
def test_runtime_errors_are_one_line_and_exit_1(
    latent_files, model_dir, argv_of, message, capsys
):
    assert main(argv_of(latent_files, model_dir)) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert err.startswith("skfusemix ")


def test_subprocess_error_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [sys.executable, "-m", "skfusemix", "evaluate", str(tmp_path), "--x", "a.npy",
         "--y", "b.npy"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "holds no saved model" in result.stderr


def test_encode_text_file(bert_dir, tmp_path, capsys):
    from skfusemix.encoders import TextEncoder

    lines = ["a red car", "two dogs on a beach", "", "a red car"]
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "zy.npy"
    argv = ["encode", str(source), str(out), "--model", bert_dir, "--batch-size", "2",
            "--pooling", "cls", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert "encoded 4 text items" in capsys.readouterr().out
    Z = np.load(out)
    expected = TextEncoder(bert_dir, pooling="cls", device="cpu").transform(lines)
    np.testing.assert_allclose(Z, expected, atol=1e-5)
    assert main(argv) == 0  # finished file from the same encoder: reused
    assert main([*argv[:-4], "--pooling", "mean"]) == 1  # another encoder: refuses
    assert "overwrite" in capsys.readouterr().err


def test_encode_image_directory(vit_dir, tmp_path, capsys):
    from PIL import Image

    from skfusemix.encoders import ImageEncoder

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.RandomState(0)
    for name in ["b.png", "a.png", "c.jpg"]:
        pixels = rng.randint(0, 255, size=(20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=100)
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "zx.npy"
    assert main(["encode", str(images), str(out), "--model", vit_dir]) == 0
    files = (tmp_path / "zx.npy.files.txt").read_text().splitlines()
    assert [os.path.basename(p) for p in files] == ["a.png", "b.png", "c.jpg"]
    expected = ImageEncoder(vit_dir, device="cpu").transform(files)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
    # A glob works too and the kind is guessed from the files.
    out2 = tmp_path / "zx2.npy"
    assert main(["encode", str(images / "*.png"), str(out2), "--model", vit_dir]) == 0
    np.testing.assert_allclose(np.load(out2), expected[:2], atol=1e-5)


def test_encode_wav_files(whisper_dir, tmp_path, capsys):
    from scipy.io import wavfile

    from skfusemix.encoders import AudioEncoder

    rng = np.random.RandomState(0)
    clips = []
    for i, n in enumerate([16000, 8000]):
        clip = (0.1 * rng.standard_normal(n)).astype(np.float32)
        wavfile.write(tmp_path / f"clip{i}.wav", 16000, clip)
        clips.append(clip)
    out = tmp_path / "za.npy"
    assert main(["encode", str(tmp_path / "*.wav"), str(out), "--model", whisper_dir,
                 "--kind", "audio"]) == 0  # fmt: skip
    expected = AudioEncoder(whisper_dir, device="cpu").transform(clips)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
    # A file at another rate is refused in one line.
    wavfile.write(tmp_path / "clip9.wav", 8000, clips[1])
    assert main(["encode", str(tmp_path / "*.wav"), str(tmp_path / "zb.npy"),
                 "--model", whisper_dir]) == 1  # fmt: skip
    assert "resample" in capsys.readouterr().err
