"""The library's file formats, read and written safely.

Every file the library writes (saved models, checkpoints, cached latents,
latent metadata, rendered data sets) goes through :func:`atomic_replace`: a
temporary file in the same folder, then :func:`os.replace`, so a reader never
sees half of one.  Models and checkpoints are JSON and safetensors only
(never pickle), read strictly: :func:`load_module_tensors` refuses missing,
extra, reshaped or non-finite tensors before touching any module.
"""

import hashlib
import json
import os
import uuid

import torch
from safetensors import safe_open
from safetensors.torch import save_file

__all__ = [
    "atomic_replace",
    "load_module_tensors",
    "module_tensors",
    "read_json",
    "read_safetensors",
    "sha256_file",
    "write_json",
    "write_safetensors",
]


def atomic_replace(path, write):
    """Write ``path`` through ``write(tmp_path)``, then rename it into place.

    The temporary name is unique per call, so concurrent writers (threads,
    processes, machines sharing a file system) never collide; the last
    rename wins and every reader sees a whole file.  The temporary file is
    removed when ``write`` fails.

    Parameters
    ----------
    path : str or path-like
        Destination.
    write : callable
        Called with the temporary path (a str); writes the whole file there.

    Examples
    --------
    >>> import os, tempfile
    >>> from skfusemix._io import atomic_replace
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_replace(path, lambda tmp: open(tmp, "w").write("hi"))
    >>> open(path).read()
    'hi'
    """
    path = os.fspath(path)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj, *, sync=False):
    """Atomically write ``obj`` as indented JSON with sorted keys
    (``sync=True`` also flushes it to the disk before the rename)."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, allow_nan=True)
            if sync:
                f.flush()
                os.fsync(f.fileno())

    atomic_replace(path, write)


def read_json(path, what):
    """A JSON object read from ``path``; ``what`` names the file in errors
    (a FileNotFoundError when missing, a ValueError when not a JSON object)."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"No {what} at {os.fspath(path)!r}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{os.fspath(path)!r} must hold a JSON object.")
    return obj


def write_safetensors(path, tensors, metadata=None):
    """Atomically save a dict of tensors (moved to CPU, made contiguous)
    with string ``metadata`` in the header."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_replace(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_safetensors(path, framework="pt"):
    """Tensors (torch on CPU, or NumPy arrays with ``framework="np"``) and
    header metadata of a safetensors file; a ``ValueError`` for anything that
    is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}.")
    try:
        with safe_open(path, framework=framework, device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # the Rust parser's SafetensorError, OSError, ...
        raise ValueError(f"{path!r} is not a valid safetensors file: {exc}") from None
    return tensors, metadata


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------- module <-> tensors
def module_tensors(modules):
    """``{"adapter_x.blocks.0.fc1.weight": ..., "loss.log_temperature": ...}``
    for ``modules = {"adapter_x": ..., "adapter_y": ..., "loss": ...}``."""
    return {
        f"{prefix}.{name}": value
        for prefix, module in modules.items()
        for name, value in module.state_dict().items()
    }


def load_module_tensors(modules, tensors, source):
    """Strictly copy ``tensors`` into ``modules`` (see :func:`module_tensors`).

    Every expected name must be present with its exact shape and a floating
    dtype, nothing else may be, and values must be finite; otherwise a
    ValueError names the problems and no module is touched.
    """
    expected = {k: v for k, v in module_tensors(modules).items()}
    problems = name_problems(expected, tensors, "tensors")
    for key in sorted(set(expected) & set(tensors)):
        got, want = tensors[key], expected[key]
        if tuple(got.shape) != tuple(want.shape):
            problems.append(
                f"{key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
        elif not got.dtype.is_floating_point:
            problems.append(f"{key} has dtype {got.dtype}, expected a float")
        elif not bool(torch.isfinite(got).all()):
            problems.append(f"{key} holds NaN or infinite values")
    if problems:
        raise ValueError(
            f"{source} does not match the model its configuration describes: "
            + "; ".join(problems)
            + "."
        )
    for prefix, module in modules.items():
        state = {
            name: tensors[f"{prefix}.{name}"] for name in module.state_dict().keys()
        }
        module.load_state_dict(state, strict=True)


def name_problems(expected, got, what):
    """``["missing <what> 'a', 'b'", "unknown <what> 'c'"]`` for the names of
    ``expected`` that ``got`` lacks and the names of ``got`` not expected."""
    problems = []
    missing = sorted(set(expected) - set(got))
    unknown = sorted(set(got) - set(expected))
    if missing:
        problems.append(f"missing {what} {short_list(missing)}")
    if unknown:
        problems.append(f"unknown {what} {short_list(unknown)}")
    return problems


def short_list(keys, limit=5):
    """The first ``limit`` keys, quoted, and how many more (for errors)."""
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
