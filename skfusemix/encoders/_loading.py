"""Loading Hugging Face models lazily, with errors that say what to do."""

import logging
import os
import re
from collections import OrderedDict
from contextlib import contextmanager

from ._fingerprint import fingerprint_directory, fingerprint_object

__all__ = [
    "load_pretrained",
    "shared_load",
    "load_processor",
    "model_fingerprint",
    "is_local_path",
    "model_name",
]

logger = logging.getLogger(__name__)

# A few recently loaded models, shared by estimators with the same model so
# that clones made by GridSearchCV or cross_validate do not reload it.  The
# models are frozen and only ever run under ``torch.inference_mode``.
_LOADED = OrderedDict()
_MAX_LOADED = 2

_HUB_ID = re.compile(r"^[\w.\-]+(/[\w.\-]+)?$")


def is_local_path(name):
    """Whether the string ``name`` names a filesystem path, not a hub id."""
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return True
    return (
        os.path.isabs(expanded)
        or name.startswith((".", "~"))
        or "\\" in name
        or not _HUB_ID.match(name)
    )


def model_name(model):
    """A short human-readable name of a model given as id, path or object."""
    if isinstance(model, str):
        return model
    name = getattr(model, "name_or_path", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    return f"{type(model).__qualname__}({name!r})" if name else type(model).__qualname__


def _missing_model_message(name, what, exc):
    detail = (
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    )
    return (
        f"Could not load the {what} of {name!r}: {detail}\n"
        "The model is neither a local directory nor available from the Hugging Face "
        "hub cache, and it could not be downloaded. To use it without network access:\n"
        "  - download it once elsewhere (e.g. `huggingface-cli download "
        f"{name}`) and pass the local directory, e.g. model='/path/to/model';\n"
        "  - or point HF_HOME (or HF_HUB_CACHE) at a Hugging Face cache that holds it;\n"
        "  - or pass an already loaded model, e.g. model=AutoModel.from_pretrained(...), "
        "together with tokenizer=... or processor=...."
    )


@contextmanager
def _quiet_transformers():
    """No "Loading weights" progress bar from transformers: loading is not
    progress the user asked to see (skfusemix logs it at INFO instead)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _call_from_pretrained(loader, name, revision, what):
    from huggingface_hub.errors import HFValidationError

    try:
        hub_errors = (OSError, ValueError, HFValidationError)
        try:  # the hub's HTTP client errors are not all OSError subclasses
            import httpx

            hub_errors += (httpx.HTTPError,)
        except ImportError:  # pragma: no cover
            pass
        with _quiet_transformers():
            return loader(name, revision=revision)
    except hub_errors as exc:
        raise OSError(_missing_model_message(name, what, exc)) from None


def load_pretrained(name, revision, model_loader, processor_loader, what):
    """Load ``(model, processor)`` of the hub id or local directory ``name``.

    ``processor_loader`` may be None when the caller supplies the processor.
    """
    if is_local_path(name):
        path = os.path.expanduser(name)
        if not os.path.isdir(path):
            raise OSError(
                f"The model directory {name!r} does not exist. Pass an existing "
                "directory written by `save_pretrained`, a Hugging Face hub id, or an "
                "already loaded model."
            )
        name = path

    def load():
        logger.info("Loading %s %r", what, name)
        model = _call_from_pretrained(model_loader, name, revision, what + " model")
        processor = None
        if processor_loader is not None:
            processor = _call_from_pretrained(
                processor_loader, name, revision, what + " preprocessor"
            )
        return model, processor

    return shared_load((name, revision, model_loader, processor_loader), load)


def shared_load(key, load):
    """``load()``, or what it returned for the same hashable ``key`` recently
    (the few last loaded models are kept)."""
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    value = load()
    _LOADED[key] = value
    while len(_LOADED) > _MAX_LOADED:
        _LOADED.popitem(last=False)
    return value


def load_processor(name, revision, loader, what):
    """Load only a tokenizer or processor (for a model passed already loaded)."""
    if is_local_path(name):
        name = os.path.expanduser(name)
    return _call_from_pretrained(loader, name, revision, what)


def _hub_commit(name, revision):
    """The commit hash of the locally cached snapshot of a hub model, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json", revision=revision)
    except Exception:  # malformed id, unreadable cache: no commit known
        return None
    if not isinstance(found, str):
        return None
    parts = os.path.normpath(found).split(os.sep)
    if "snapshots" in parts:
        return parts[parts.index("snapshots") + 1]
    return None


def model_fingerprint(model, revision):
    """Identity of a model for the cache: changes whenever its weights may.

    - a local directory: the content hash of its files (weights, config and
      tokenizer files);
    - a hub id: the id, the requested revision and the commit hash of the
      locally cached snapshot (resolved after loading if not cached yet);
    - a loaded model: its class, configuration and a hash of its weights.

    Returns None when a hub model's commit is not known yet.
    """
    if not isinstance(model, str):
        return fingerprint_object(model)
    if is_local_path(model):
        path = os.path.expanduser(model)
        if os.path.isdir(path):
            return "dir:" + fingerprint_directory(path)
        return None
    commit = _hub_commit(model, revision)
    if commit is None:
        return None
    return f"hub:{model}@{commit}"
