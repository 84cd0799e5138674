"""Saving and loading fitted aligners without pickle: safetensors + JSON.

A saved :class:`~skfusemix.FuseMixAligner` is a directory::

    model.safetensors   adapter weights and the loss' learned scalars (float32)
    config.json         parameters, fitted attributes, versions, encoders,
                        and the SHA-256 of model.safetensors (and csls.safetensors)
    cca/, anchors/      the joined CCAAligner and ASIFAligner, when used
    csls.safetensors    the reference embeddings of the hubness correction,
                        when used

Loading parses JSON and safetensors only (no pickle, no ``torch.load``), so
a model file cannot run code.  It is strict: the tensor names and shapes
must be exactly those the configuration implies, the fitted attributes must
be well-formed and agree with the tensors, and the format version must be
one this library reads; anything else is a ``ValueError`` before the
estimator is built, never a partial load.

The same atomic safetensors writer and strict reader serve the training
checkpoints (:mod:`skfusemix.engine._checkpoint`).
"""

import json
import math
import numbers
import os
import re
import warnings

import numpy as np
import torch

from ._io import (
    atomic_replace,
    load_module_tensors,
    module_tensors,
    name_problems,
    read_json,
    read_safetensors,
    sha256_file,
    write_json,
    write_safetensors,
)
from ._recipe import check_n_layers

__all__ = ["load_aligner", "save_aligner"]

FORMAT = "skfusemix.FuseMixAligner"
#: Bump when a file written by this version cannot be read by older code.
#: 2: resolved "auto" values and standardisation (version 1 files, written
#: before either existed, load as fitted without standardisation).
#: 3: the CCA joined to the embeddings (``cca_weight``, in the ``cca``
#: folder; version 1 and 2 files load without it).
#: 4: the anchors joined to the embeddings (``anchor_weight``, in the
#: ``anchors`` folder; older files load without them).
#: 5: the hubness correction (``csls_neighbors``, its reference embeddings
#: in ``csls.safetensors``; older files load without it).
#: 6: the anchors measured in the adapters' and CCA's joined space (before,
#: in the adapters' space alone; older files whose anchors sit beside a CCA
#: cannot be read, those without a CCA mean the same and load).
FORMAT_VERSION = 6
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: Sub-folder of a saved FuseMixAligner with its joined CCAAligner.
CCA_FOLDER = "cca"
#: Sub-folder with the ASIFAligner of the joined anchors.
ANCHORS_FOLDER = "anchors"
#: File with the reference embeddings of the hubness correction.
CSLS_FILE = "csls.safetensors"

_FITTED_INTS = ("n_features_in_", "n_features_y_in_", "batch_size_", "n_iter_", "t_")
#: The fitted values of the "auto" parameters: they shape the modules.
_RESOLVED = (
    "n_components_",
    "n_layers_",
    "expansion_",
    "dropout_",
    "alpha_",
    "max_epochs_",
)


# ------------------------------------------------------------- the aligner
def _json_param(name, value):
    """A JSON value for a constructor parameter, or raise TypeError."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, tuple | list) and all(
        isinstance(v, numbers.Integral) for v in value
    ):
        return [int(v) for v in value]
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(type(value).__name__)


def _encoder_identity(name, encoder):
    from .encoders import latent_metadata

    if isinstance(encoder, str):
        return {"encoder": encoder}
    if isinstance(encoder, dict):  # e.g. read_latent_metadata(path)
        keep = ("encoder", "model", "params", "shape", "dtype", "skfusemix_version")
        identity = {k: encoder[k] for k in keep if k in encoder}
        if "encoder" not in identity:
            raise ValueError(
                f"encoders[{name!r}] must be an encoder, its name, or the metadata "
                "dict of skfusemix.encoders.read_latent_metadata (with an 'encoder' key)."
            )
        return json.loads(json.dumps(identity))
    if hasattr(encoder, "get_params"):
        return json.loads(json.dumps(latent_metadata(encoder)))
    raise TypeError(
        f"encoders[{name!r}] must be an encoder, a string or a metadata dict, got "
        f"{type(encoder).__name__}."
    )


def save_aligner(estimator, path, encoders=None):
    """Implementation of :meth:`FuseMixAligner.save`."""
    from ._version import __version__

    params, skipped = {}, {}
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = _json_param(name, value)
        except TypeError:
            params[name] = None
            skipped[name] = type(value).__name__
    if skipped:
        warnings.warn(
            "These parameters cannot be stored as JSON and are saved as None: "
            + ", ".join(f"{k} ({v})" for k, v in skipped.items())
            + ".  Pass them to FuseMixAligner.load(..., **params) or set_params "
            "after loading (a y_transformer is needed to call transform_y on raw "
            "inputs).",
            UserWarning,
            stacklevel=3,
        )
    fitted = {name: int(getattr(estimator, name)) for name in _FITTED_INTS}
    fitted.update(
        n_components_=int(estimator.n_components_),
        n_layers_=[int(v) for v in estimator.n_layers_],
        expansion_=int(estimator.expansion_),
        dropout_=float(estimator.dropout_),
        alpha_=float(estimator.alpha_),
        max_epochs_=int(estimator.max_epochs_),
        cca_weight_=float(estimator.cca_weight_),
        anchor_weight_=float(estimator.anchor_weight_),
        csls_neighbors_=int(estimator.csls_neighbors_),
    )
    fitted["temperature_"] = float(estimator.temperature_)
    fitted["history_"] = {
        k: [float(v) for v in values] for k, values in estimator.history_.items()
    }
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(v) for v in estimator.feature_names_in_]
    if getattr(estimator, "validation_scores_", None) is not None:
        fitted["validation_scores_"] = [float(v) for v in estimator.validation_scores_]
        fitted["best_validation_score_"] = float(estimator.best_validation_score_)

    identities = {}
    for side, encoder in (encoders or {}).items():
        if side not in ("x", "y"):
            raise ValueError(f"encoders keys must be 'x' and/or 'y', got {side!r}.")
        identities[side] = _encoder_identity(side, encoder)
        width = {"x": fitted["n_features_in_"], "y": fitted["n_features_y_in_"]}[side]
        shape = identities[side].get("shape")
        if isinstance(shape, list) and len(shape) == 2 and shape[1] != width:
            raise ValueError(
                f"encoders[{side!r}] made latents of width {shape[1]}, but the aligner "
                f"was fitted on {width} features of modality {side}."
            )

    os.makedirs(path, exist_ok=True)
    for part, folder in (
        (estimator.cca_, CCA_FOLDER),
        (estimator.anchors_, ANCHORS_FOLDER),
    ):
        if part is not None:
            part.save(os.path.join(path, folder))
    weights = os.path.join(path, WEIGHTS_FILE)
    write_safetensors(weights, module_tensors(_modules(estimator)))
    csls = None
    if estimator.csls_neighbors_:
        csls_path = os.path.join(path, CSLS_FILE)
        write_safetensors(
            csls_path,
            {
                "reference_x": torch.from_numpy(estimator.csls_reference_x_),
                "reference_y": torch.from_numpy(estimator.csls_reference_y_),
            },
        )
        csls = {"file": CSLS_FILE, "sha256": sha256_file(csls_path)}
    elif os.path.exists(os.path.join(path, CSLS_FILE)):
        os.remove(os.path.join(path, CSLS_FILE))  # a model saved here before
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skfusemix_version": __version__,
        "torch_version": torch.__version__,
        "params": params,
        "unsaved_params": skipped,
        "fitted": fitted,
        "encoders": identities,
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)},
    }
    if csls is not None:
        config["csls"] = csls
    write_json(os.path.join(path, CONFIG_FILE), config)
    return path


def _modules(estimator):
    return {
        "adapter_x": estimator.adapter_x_,
        "adapter_y": estimator.adapter_y_,
        "loss": estimator.loss_,
    }


def _neighbour_width(fitted, cca):
    """Width of the adapters' and the CCA's joined space, where the anchors
    and the hubness correction's references live."""
    return fitted["n_components_"] + (0 if cca is None else cca._n_features_out)


def _load_part(path, cls, folder, widths, what, config_path):
    """A saved aligner of ``cls`` from ``folder``, checked to take ``widths``
    features (those of ``what``)."""
    part = cls.load(os.path.join(path, folder))
    if (part.n_features_in_, part.n_features_y_in_) != tuple(widths):
        raise ValueError(
            f"{config_path!r}: the {cls.__name__} in {folder!r} takes "
            f"{part.n_features_in_} and {part.n_features_y_in_} features, "
            f"{what} have {widths[0]} and {widths[1]}: the files do not "
            "belong together."
        )
    return part


def _load_joined(path, fitted, config_path, version):
    """The aligners saved beside the adapters and joined to their
    embeddings: ``(cca_, anchors_)``, each None when its weight is 0, and
    checked to take the inputs the aligner gives them (the CCA: the latents;
    the anchors: the adapters' and the CCA's joined embeddings)."""
    from .baselines import ASIFAligner, CCAAligner

    if version <= 5 and fitted["anchor_weight_"] > 0 and fitted["cca_weight_"] > 0:
        raise ValueError(
            f"{config_path!r} was written by an earlier skfusemix (format version "
            f"{version}) whose anchors were measured in the adapters' space alone; "
            "this version measures them beside the CCA. Fit the model again."
        )
    cca = anchors = None
    if fitted["cca_weight_"] > 0:
        widths = fitted["n_features_in_"], fitted["n_features_y_in_"]
        cca = _load_part(
            path, CCAAligner, CCA_FOLDER, widths, "the adapters' inputs", config_path
        )
    if fitted["anchor_weight_"] > 0:
        widths = (_neighbour_width(fitted, cca),) * 2
        anchors = _load_part(
            path,
            ASIFAligner,
            ANCHORS_FOLDER,
            widths,
            "the joined embeddings",
            config_path,
        )
    return cca, anchors


def _load_csls(path, config, fitted, cca, config_path):
    """The reference embeddings of the hubness correction (None, None when
    ``csls_neighbors_`` is 0), checked against the configuration: two
    float32 arrays of the same shape, as wide as the adapters' and the
    CCA's joined space, finite, and the file the configuration names."""
    if fitted["csls_neighbors_"] == 0:
        return None, None
    info = config.get("csls")
    if not isinstance(info, dict) or info.get("file") != CSLS_FILE:
        raise ValueError(
            f"{config_path!r}: csls_neighbors_ is {fitted['csls_neighbors_']}, so "
            f"'csls' must name {CSLS_FILE!r}."
        )
    file = os.path.join(path, CSLS_FILE)
    arrays, _ = read_safetensors(file, framework="np")
    width = _neighbour_width(fitted, cca)
    problems = name_problems({"reference_x": 0, "reference_y": 0}, arrays, "arrays")
    for name in sorted({"reference_x", "reference_y"} & set(arrays)):
        got = arrays[name]
        if got.ndim != 2 or got.shape[0] < 1 or got.shape[1] != width:
            problems.append(f"{name} has shape {got.shape}, expected (n, {width})")
        elif got.dtype != np.float32:
            problems.append(f"{name} has dtype {got.dtype}, expected float32")
        elif not np.isfinite(got).all():
            problems.append(f"{name} holds NaN or infinite values")
    if not problems and arrays["reference_x"].shape != arrays["reference_y"].shape:
        problems.append("reference_x and reference_y differ in shape")
    if problems:
        raise ValueError(
            f"{file!r} does not match the model {CONFIG_FILE} describes: "
            + "; ".join(problems)
            + "."
        )
    if sha256_file(file) != info.get("sha256"):
        raise ValueError(
            f"{file!r} is not the file {CONFIG_FILE} was saved with (its SHA-256 "
            "differs): it was modified or comes from another model."
        )
    return arrays["reference_x"], arrays["reference_y"]


def _fitted_attributes(fitted, config_path, params):
    """Validate the ``fitted`` section of config.json (format 1 files, which
    predate ``"auto"``, take the resolved values from ``params``)."""

    def bad(message):
        return ValueError(f"{config_path!r}: {message}")

    if not isinstance(fitted, dict):
        raise bad("'fitted' must be an object.")
    out = {}
    for name, kind, low in (
        ("n_components_", int, 1),
        ("expansion_", int, 1),
        ("max_epochs_", int, 1),
        ("dropout_", float, 0),
        ("alpha_", float, 0),
    ):
        value = fitted.get(name, params.get(name[:-1]))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not isinstance(value, int))
            or not math.isfinite(value)
            or value < low
            or (name == "dropout_" and value >= 1)
        ):
            raise bad(f"fitted attribute {name} is invalid: {value!r}.")
        out[name] = kind(value)
    n_layers = fitted.get("n_layers_", params.get("n_layers"))
    try:
        out["n_layers_"] = check_n_layers(n_layers)
    except (ValueError, TypeError):
        raise bad(f"fitted attribute n_layers_ is invalid: {n_layers!r}.") from None
    for name in _FITTED_INTS:
        value = fitted.get(name)
        low = 1 if name in ("n_features_in_", "n_features_y_in_", "batch_size_") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise bad(
                f"fitted attribute {name} must be an integer >= {low}, got {value!r}."
            )
        out[name] = value
    temperature = fitted.get("temperature_")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise bad(f"temperature_ must be a positive number, got {temperature!r}.")
    out["temperature_"] = float(temperature)
    # 0 in files written before the CCA (version 3) or the anchors (4) existed
    for name in ("cca_weight_", "anchor_weight_"):
        weight = fitted.get(name, 0.0)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 <= weight < 1
        ):
            raise bad(f"{name} must be a number in [0, 1), got {weight!r}.")
        out[name] = float(weight)
    if out["cca_weight_"] + out["anchor_weight_"] >= 1:
        raise bad("cca_weight_ + anchor_weight_ must be below 1.")
    # 0 in files written before the hubness correction existed (version 5)
    k = fitted.get("csls_neighbors_", 0)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise bad(f"csls_neighbors_ must be an integer >= 0, got {k!r}.")
    out["csls_neighbors_"] = k
    history = fitted.get("history_")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(isinstance(x, int | float) for x in v)
        for v in history.values()
    ):
        raise bad("history_ must map names to lists of numbers.")
    if len({len(v) for v in history.values()}) > 1:
        raise bad("history_ lists must all have the same length.")
    history = dict(history)
    if "epoch" in history:
        history["epoch"] = [int(v) for v in history["epoch"]]
    out["history_"] = history
    names = fitted.get("feature_names_in_")
    if names is not None:
        if (
            not isinstance(names, list)
            or not all(isinstance(v, str) for v in names)
            or len(names) != out["n_features_in_"]
        ):
            raise bad("feature_names_in_ must be a list of n_features_in_ strings.")
        out["feature_names_in_"] = np.asarray(names, dtype=object)
    scores = fitted.get("validation_scores_")
    if scores is not None:
        best = fitted.get("best_validation_score_")
        if (
            not isinstance(scores, list)
            or not all(isinstance(v, int | float) for v in scores)
            or not isinstance(best, int | float)
        ):
            raise bad("validation_scores_ must be a list of numbers with a best score.")
        out["validation_scores_"] = [float(v) for v in scores]
        out["best_validation_score_"] = float(best)
    else:
        out["validation_scores_"] = None
        out["best_validation_score_"] = None
    return out


def load_aligner(cls, path, *, device=None, expected_encoders=None, **params):
    """Implementation of :meth:`FuseMixAligner.load`."""
    from ._data import resolve_device
    from .encoders._memmap import _differences

    config, config_path = _read_config(cls.__name__, path)
    version = config["format_version"]

    saved = config.get("params")
    if not isinstance(saved, dict):
        raise ValueError(f"{config_path!r}: 'params' must be an object.")
    valid = set(cls().get_params(deep=False))
    unknown = sorted(set(saved) - valid)
    if unknown:
        raise ValueError(
            f"{config_path!r} has unknown parameters {unknown}; it was written by a "
            "different skfusemix version or edited."
        )
    if set(params) - valid:
        raise TypeError(
            f"Unknown parameters for {cls.__name__}: {sorted(set(params) - valid)}."
        )
    if version == 1:  # written before standardisation existed
        saved.setdefault("standardize", False)
    if version <= 2:  # written before the joined CCA existed
        saved.setdefault("cca_weight", 0.0)
    if version <= 3:  # written before the joined anchors existed
        saved.setdefault("anchor_weight", 0.0)
    if version <= 4:  # written before the hubness correction existed
        saved.setdefault("csls_neighbors", 0)
    saved = dict(saved, **params)
    if isinstance(saved.get("n_layers"), list):
        saved["n_layers"] = tuple(saved["n_layers"])
    if device is not None:
        saved["device"] = device
    estimator = cls(**saved)
    estimator._validate_params()  # InvalidParameterError (a ValueError) on edits
    fitted = _fitted_attributes(config.get("fitted"), config_path, saved)

    if expected_encoders:
        stored = config.get("encoders") or {}
        for side, encoder in expected_encoders.items():
            want = _encoder_identity(side, encoder)
            if side not in stored:
                raise ValueError(
                    f"{os.fspath(path)!r} records no encoder for modality {side!r}."
                )
            diffs = _differences(
                {k: want[k] for k in ("encoder", "model", "params") if k in want},
                {
                    k: stored[side].get(k)
                    for k in ("encoder", "model", "params")
                    if k in want
                },
            )
            if diffs:
                raise ValueError(
                    f"{os.fspath(path)!r} was fitted on latents of a different "
                    f"modality-{side} encoder: " + "; ".join(diffs)
                )

    weights_info = config.get("weights")
    if not isinstance(weights_info, dict) or weights_info.get("file") != WEIGHTS_FILE:
        raise ValueError(f"{config_path!r}: 'weights' must name {WEIGHTS_FILE!r}.")
    weights_path = os.path.join(path, WEIGHTS_FILE)
    tensors, _ = read_safetensors(weights_path)

    for name in _RESOLVED:
        setattr(estimator, name, fitted[name])
    with torch.random.fork_rng(devices=[]):  # building modules draws random inits
        adapter_x, adapter_y, loss = estimator._build_modules(
            fitted["n_features_in_"],
            fitted["n_features_y_in_"],
            temperature=fitted["temperature_"],
        )
    modules = {"adapter_x": adapter_x, "adapter_y": adapter_y, "loss": loss}
    load_module_tensors(modules, tensors, repr(weights_path))
    temperature = float(modules["loss"].temperature)
    if not math.isclose(temperature, fitted["temperature_"], rel_tol=1e-5):
        raise ValueError(
            f"{config_path!r} says temperature_={fitted['temperature_']!r} but the "
            f"tensors hold {temperature!r}: the files do not belong together."
        )
    if sha256_file(weights_path) != weights_info.get("sha256"):
        raise ValueError(
            f"{weights_path!r} is not the file {CONFIG_FILE} was saved with (its "
            "SHA-256 differs): the weights were modified or come from another model."
        )

    # An explicit device must exist; the saved one falls back to CPU (a model
    # trained on CUDA loads on a laptop).
    target = (
        resolve_device(device) if device is not None else estimator._inference_device()
    )
    for module in modules.values():
        module.to(target).eval()
    estimator.adapter_x_ = modules["adapter_x"]
    estimator.adapter_y_ = modules["adapter_y"]
    estimator.loss_ = modules["loss"]
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator.device_ = target
    estimator.cca_, estimator.anchors_ = _load_joined(
        path, fitted, config_path, version
    )
    estimator.csls_reference_x_, estimator.csls_reference_y_ = _load_csls(
        path, config, fitted, estimator.cca_, config_path
    )
    if config.get("encoders"):
        estimator.encoders_ = config["encoders"]
    return estimator


# ------------------------------------------------------------ the baselines
#: Fitted arrays of each closed-form aligner and their shapes, in symbols:
#: ``dx``/``dy`` the feature counts of x/y, ``k`` the shared-space width.
_BASELINE_ARRAYS = {
    "CCAAligner": {
        "x_weights_": ("dx", "k"),
        "y_weights_": ("dy", "k"),
        "canonical_correlations_": ("k",),
        "x_mean_": ("dx",),
        "x_std_": ("dx",),
        "y_mean_": ("dy",),
        "y_std_": ("dy",),
    },
    "ProcrustesAligner": {
        "x_components_": ("dx", "k"),
        "y_components_": ("dy", "k"),
        "rotation_": ("k", "k"),
        "x_mean_": ("dx",),
        "y_mean_": ("dy",),
        "x_scale_": ("k",),
        "y_scale_": ("k",),
    },
    "ASIFAligner": {
        "anchors_x_": ("k", "dx"),
        "anchors_y_": ("k", "dy"),
        "anchor_indices_": ("k",),
        "x_mean_": ("dx",),
        "y_mean_": ("dy",),
    },
}
_INTEGER_ARRAYS = {"anchor_indices_"}
_BASELINE_INTS = ("n_features_in_", "n_features_y_in_", "n_components_out")


def _baseline_arrays(cls):
    from . import baselines

    name = cls.__name__
    if name not in _BASELINE_ARRAYS or getattr(baselines, name, None) is not cls:
        raise TypeError(
            f"{name} has no pickle-free save format; the aligners that have one are "
            "FuseMixAligner, " + ", ".join(_BASELINE_ARRAYS) + "."
        )
    return _BASELINE_ARRAYS[name]


def _json_params(estimator):
    params, skipped = {}, {}
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = _json_param(name, value)
        except TypeError:
            params[name] = None
            skipped[name] = type(value).__name__
    if skipped:
        warnings.warn(
            "These parameters cannot be stored as JSON and are saved as None: "
            + ", ".join(f"{k} ({v})" for k, v in skipped.items())
            + ".  Set them after loading if they matter.",
            UserWarning,
            stacklevel=4,
        )
    return params, skipped


def save_baseline(estimator, path):
    """Implementation of :meth:`skfusemix.base.AlignerMixin.save`: a fitted
    closed-form aligner as ``model.safetensors`` (its arrays) and
    ``config.json`` (class, parameters, sizes, checksum)."""
    from safetensors.numpy import save_file as save_numpy

    from . import __version__

    cls = type(estimator)
    names = _baseline_arrays(cls)
    params, skipped = _json_params(estimator)
    fitted = {
        "n_features_in_": int(estimator.n_features_in_),
        "n_features_y_in_": int(estimator.n_features_y_in_),
        "n_components_out": int(estimator._n_features_out),
    }
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(v) for v in estimator.feature_names_in_]
    arrays = {}
    for name in names:
        value = np.asarray(getattr(estimator, name))
        dtype = np.int64 if name in _INTEGER_ARRAYS else np.float64
        arrays[name] = np.ascontiguousarray(value, dtype=dtype)
    os.makedirs(path, exist_ok=True)
    weights = os.path.join(path, WEIGHTS_FILE)
    atomic_replace(weights, lambda tmp: save_numpy(arrays, tmp))
    config = {
        "format": f"skfusemix.{cls.__name__}",
        "format_version": FORMAT_VERSION,
        "skfusemix_version": __version__,
        "class": cls.__name__,
        "params": params,
        "unsaved_params": skipped,
        "fitted": fitted,
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(weights)},
    }
    write_json(os.path.join(path, CONFIG_FILE), config)
    return path


_MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_member_name(name, what):
    """``name`` if it can name a sub-folder of a saved model (a modality of
    an :class:`~skfusemix.AnchorBinding`, a member of an
    :class:`~skfusemix.ensemble.AlignerEnsemble`), else a ValueError: never a
    path separator or ``..``."""
    if not isinstance(name, str) or not _MEMBER_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{what} {name!r} is not a valid name: use 1-64 letters, digits, "
            "'_', '-' or '.', starting with a letter or digit."
        )
    return name


def save_composite(path, cls_name, members, key, what, **fields):
    """Save a model made of named models: each ``(name, model)`` of
    ``members`` in its own ``save`` folder ``path/<name>`` (every name checked
    by :func:`check_member_name` first), then ``config.json`` with the format
    header, the names under ``key`` and the other ``fields``."""
    from ._io import write_json
    from ._version import __version__

    names = [check_member_name(name, what) for name, _ in members]
    os.makedirs(path, exist_ok=True)
    for name, model in members:
        model.save(os.path.join(path, name))
    write_json(
        os.path.join(path, CONFIG_FILE),
        {
            "format": f"skfusemix.{cls_name}",
            "format_version": FORMAT_VERSION,
            "skfusemix_version": __version__,
            **fields,
            key: names,
        },
    )
    return path


def read_composite(cls_name, path, key, what):
    """``(config, names)`` of a model written by :func:`save_composite`: the
    member names under ``key``, a non-empty list of names checked by
    :func:`check_member_name` before any path is built from them."""
    config, config_path = _read_config(cls_name, path)
    names = config.get(key)
    if not isinstance(names, list) or not names:
        raise ValueError(f"{config_path!r}: {key!r} must be a non-empty list.")
    for name in names:
        check_member_name(name, f"{config_path!r}: {what}")
    return config, names


def _read_config(cls_name, path):
    """config.json of a saved model, checked to be of ``cls_name`` (any
    skfusemix model when None) in a format version this library reads."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{os.fspath(path)!r} is not a directory written by the save method of "
            "a skfusemix aligner."
        )
    config = read_json(config_path, f"{CONFIG_FILE} (not a saved skfusemix model?)")
    fmt = config.get("format")
    if not isinstance(fmt, str) or not fmt.startswith("skfusemix."):
        raise ValueError(
            f"{config_path!r} does not describe a saved skfusemix model "
            f"(format {fmt!r})."
        )
    if cls_name is not None and fmt != f"skfusemix.{cls_name}":
        raise ValueError(
            f"{os.fspath(path)!r} holds a saved {fmt.removeprefix('skfusemix.')}, "
            f"not a {cls_name}: load it with "
            f"{fmt.removeprefix('skfusemix.')}.load."
        )
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{config_path!r}: invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written in format version {version} by skfusemix "
            f"{config.get('skfusemix_version')}; this skfusemix reads format versions up "
            f"to {FORMAT_VERSION}.  Upgrade skfusemix to load it."
        )
    return config, config_path


def load_baseline(cls, path):
    """Implementation of :meth:`skfusemix.base.AlignerMixin.load`: strict, no
    pickle, a ValueError (and nothing built) for any mismatch."""
    names = _baseline_arrays(cls)
    config, config_path = _read_config(cls.__name__, path)

    saved = config.get("params")
    if not isinstance(saved, dict):
        raise ValueError(f"{config_path!r}: 'params' must be an object.")
    unknown = sorted(set(saved) - set(cls().get_params(deep=False)))
    if unknown:
        raise ValueError(
            f"{config_path!r} has unknown parameters {unknown}; it was written by a "
            "different skfusemix version or edited."
        )
    estimator = cls(**saved)
    estimator._validate_params()  # InvalidParameterError (a ValueError) on edits

    fitted = config.get("fitted")
    if not isinstance(fitted, dict):
        raise ValueError(f"{config_path!r}: 'fitted' must be an object.")
    sizes = {}
    for name, symbol in zip(_BASELINE_INTS, ("dx", "dy", "k")):
        value = fitted.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{config_path!r}: fitted {name} must be an integer >= 1, got {value!r}."
            )
        sizes[symbol] = value
    feature_names = fitted.get("feature_names_in_")
    if feature_names is not None and (
        not isinstance(feature_names, list)
        or not all(isinstance(v, str) for v in feature_names)
        or len(feature_names) != sizes["dx"]
    ):
        raise ValueError(
            f"{config_path!r}: feature_names_in_ must be a list of n_features_in_ "
            "strings."
        )

    weights_info = config.get("weights")
    if not isinstance(weights_info, dict) or weights_info.get("file") != WEIGHTS_FILE:
        raise ValueError(f"{config_path!r}: 'weights' must name {WEIGHTS_FILE!r}.")
    weights_path = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"No such file: {weights_path!r}.")
    if sha256_file(weights_path) != weights_info.get("sha256"):
        raise ValueError(
            f"{weights_path!r} is not the file {CONFIG_FILE} was saved with (its "
            "SHA-256 differs): the arrays were modified or come from another model."
        )
    arrays, _ = read_safetensors(weights_path, framework="np")
    problems = name_problems(names, arrays, "arrays")
    for name in sorted(set(names) & set(arrays)):
        got = arrays[name]
        want_shape = tuple(sizes[s] for s in names[name])
        want_dtype = np.int64 if name in _INTEGER_ARRAYS else np.float64
        if got.shape != want_shape:
            problems.append(f"{name} has shape {got.shape}, expected {want_shape}")
        elif got.dtype != want_dtype:
            problems.append(f"{name} has dtype {got.dtype}, expected {want_dtype}")
        elif not np.isfinite(got).all():
            problems.append(f"{name} holds NaN or infinite values")
    if problems:
        raise ValueError(
            f"{weights_path!r} does not match the model {CONFIG_FILE} describes: "
            + "; ".join(problems)
            + "."
        )

    for name in names:
        setattr(estimator, name, arrays[name])
    estimator.n_features_in_ = sizes["dx"]
    estimator.n_features_y_in_ = sizes["dy"]
    estimator._n_features_out = sizes["k"]
    if cls.__name__ == "ASIFAligner":
        estimator.n_anchors_ = sizes["k"]
    if feature_names is not None:
        estimator.feature_names_in_ = np.asarray(feature_names, dtype=object)
    return estimator


def load_model(path, *, device=None):
    """Load any model written by a skfusemix ``save`` method, choosing the
    class from ``config.json`` (JSON and safetensors only, never pickle).

    ``device`` is passed to :meth:`FuseMixAligner.load`; the closed-form
    aligners run on NumPy and ignore it.
    """
    from . import baselines
    from .aligner import FuseMixAligner

    config, config_path = _read_config(None, path)
    name = config["format"].removeprefix("skfusemix.")
    if name == "FuseMixAligner":
        return FuseMixAligner.load(path, device=device)
    if name in _BASELINE_ARRAYS:
        return load_baseline(getattr(baselines, name), path)
    if name == "AlignerEnsemble":
        from .ensemble import AlignerEnsemble

        return AlignerEnsemble.load(path, device=device)
    raise ValueError(f"{config_path!r} describes an unknown model class {name!r}.")
