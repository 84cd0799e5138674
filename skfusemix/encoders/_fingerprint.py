"""Stable fingerprints of inputs, models and callables, for the latent cache.

A fingerprint is a short hex string that changes whenever the thing it
describes changes in a way that could change the encoded latents.
"""

import hashlib
import inspect
import json
import os
import weakref

import joblib
import numpy as np

__all__ = ["hash_item", "fingerprint_object", "fingerprint_directory"]

_DIGEST_SIZE = 16


def _blake():
    return hashlib.blake2b(digest_size=_DIGEST_SIZE)


def hash_item(item):
    """Return the 16-byte digest of one raw input (text, image, clip, ...)."""
    h = _blake()
    if isinstance(item, str):
        h.update(b"str:")
        h.update(item.encode("utf-8", "surrogatepass"))
    elif isinstance(item, np.ndarray):
        h.update(f"nd:{item.dtype.str}:{item.shape}:".encode())
        h.update(np.ascontiguousarray(item).tobytes())
    elif isinstance(item, bytes | bytearray):
        h.update(b"bytes:")
        h.update(item)
    elif isinstance(item, os.PathLike):
        h.update(b"path:")
        h.update(os.fsencode(item))
    elif type(item).__module__.startswith("PIL."):
        h.update(f"pil:{item.mode}:{item.size}:".encode())
        h.update(item.tobytes())
    elif type(item).__module__.startswith("torch"):
        return hash_item(item.detach().cpu().numpy())
    else:
        h.update(b"obj:")
        h.update(joblib.hash(item).encode())
    return h.digest()


# Hashing every weight of a large model takes a while; remember the result per
# module object, together with the tensors' in-place version counters so that
# an in-place update of any weight invalidates it.
_MODULE_HASHES = weakref.WeakKeyDictionary()


def _hash_module_weights(module):
    import torch

    tensors = list(module.state_dict().items())
    versions = tuple((name, t.data_ptr(), t._version) for name, t in tensors)
    cached = _MODULE_HASHES.get(module)
    if cached is not None and cached[0] == versions:
        return cached[1]
    h = _blake()
    for name, t in tensors:
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}:".encode())
        arr = t.detach().cpu().contiguous()
        if arr.dtype.is_floating_point and arr.dtype.itemsize == 2:
            arr = arr.view(torch.int16)
        h.update(arr.numpy().tobytes())
    digest = h.hexdigest()
    _MODULE_HASHES[module] = (versions, digest)
    return digest


def _hash_callable(func):
    """Fingerprint a function by its qualified name, bytecode and closure."""
    h = _blake()
    h.update(
        f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}".encode()
    )
    code = getattr(func, "__code__", None)
    if code is not None:
        h.update(code.co_code)
        h.update(repr(code.co_consts).encode())
        for cell in func.__closure__ or ():
            h.update(fingerprint_object(cell.cell_contents).encode())
        for default in func.__defaults__ or ():
            h.update(fingerprint_object(default).encode())
    else:
        try:
            h.update(joblib.hash(func).encode())
        except Exception:  # an unpicklable callable object: fall back on its source
            h.update(inspect.getsource(type(func)).encode())
    return h.hexdigest()


def fingerprint_object(obj):
    """Fingerprint a loaded model, tokenizer, processor or preprocessing callable."""
    import torch

    if obj is None or isinstance(obj, str | int | float | bool):
        return json.dumps(obj)
    if isinstance(obj, torch.nn.Module):
        parts = [type(obj).__module__, type(obj).__qualname__]
        config = getattr(obj, "config", None)
        if config is not None and hasattr(config, "to_json_string"):
            parts.append(config.to_json_string(use_diff=False))
        parts.append(_hash_module_weights(obj))
        return _blake_hex("\n".join(parts))
    backend = getattr(obj, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: its full JSON definition
        definition = json.loads(backend.to_str())
        # truncation and padding are call-time settings the tokenizer keeps in
        # its backend after each call, not part of its identity
        definition.pop("truncation", None)
        definition.pop("padding", None)
        extra = {
            "cls": type(obj).__qualname__,
            "special": {k: str(v) for k, v in obj.special_tokens_map.items()},
            "padding_side": getattr(obj, "padding_side", None),
        }
        return _blake_hex(json.dumps([definition, extra], sort_keys=True))
    if hasattr(obj, "to_json_string"):  # image processors, feature extractors
        return _blake_hex(type(obj).__qualname__ + obj.to_json_string())
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return _hash_callable(obj)
    try:
        return joblib.hash(obj)
    except Exception:
        if callable(obj):
            return _hash_callable(obj)
        raise


def _blake_hex(text):
    h = _blake()
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


# Directory fingerprints, keyed by the files' (name, size, mtime) so that a
# model directory is read in full once per process and whenever it changes.
_DIR_HASHES = {}


def fingerprint_directory(path):
    """Content hash of every regular file directly inside ``path``."""
    path = os.path.abspath(path)
    entries = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        st = os.stat(full)
        entries.append((name, st.st_size, st.st_mtime_ns))
    stat_key = (path, tuple(entries))
    if stat_key in _DIR_HASHES:
        return _DIR_HASHES[stat_key]
    h = _blake()
    for name, size, _ in entries:
        h.update(f"{name}:{size}:".encode())
        with open(os.path.join(path, name), "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    digest = h.hexdigest()
    _DIR_HASHES[stat_key] = digest
    return digest
