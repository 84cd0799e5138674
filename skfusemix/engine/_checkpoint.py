"""Training checkpoints: all the state needed to resume a fit exactly.

A checkpoint is one safetensors file (written atomically: a temporary file,
then ``os.replace``) holding

* the adapter and loss tensors, the AdamW moments and step counts, and the
  best weights kept for early stopping;
* the random states as byte tensors: the generator that orders batches,
  torch's CPU generator (dropout on CPU) and, on CUDA, the device's;
* in the header, as JSON: the history, the number of steps, the optimiser's
  hyper-parameters, the early-stopping record and the *identity* of the fit
  (parameters, data digest, initial weights) that the file name is a hash of.

The mixing coefficients need not be stored: they are drawn from the seed for
the whole fit up front, so a resumed fit draws the same ones.  Loading parses
JSON and safetensors only and is strict, like the saved models (:mod:`skfusemix._io`).
"""

import hashlib
import json
import os

import numpy as np
import torch

from .._io import (
    load_module_tensors,
    module_tensors,
    read_safetensors,
    write_safetensors,
)

FORMAT = "skfusemix.checkpoint"
FORMAT_VERSION = 1
_MODULE_NAMES = ("adapter_x", "adapter_y", "loss")


def data_digest(*arrays, n_rows=1024):
    """Cheap content signature of latent matrices (numpy or torch): shapes,
    up to ``n_rows`` evenly spaced rows and the column sums."""
    digest = hashlib.sha256()
    for Z in arrays:
        n = Z.shape[0]
        rows = np.unique(np.linspace(0, n - 1, num=min(n, n_rows)).astype(np.int64))
        if isinstance(Z, torch.Tensor):
            sample = Z[torch.as_tensor(rows, device=Z.device)].float().cpu().numpy()
            sums = Z.double().sum(dim=0).cpu().numpy()
        elif isinstance(Z, np.memmap):  # read from the file, not the mapping
            from .._data import gather, scan

            sample = gather(Z, rows).numpy()
            sums = sum(block.double().sum(dim=0) for _, block in scan(Z)).numpy()
        else:
            sample = np.asarray(Z[rows], dtype=np.float32)
            sums = np.sum(Z, axis=0, dtype=np.float64)
        digest.update(repr(tuple(Z.shape)).encode())
        digest.update(np.ascontiguousarray(sample).tobytes())
        digest.update(np.ascontiguousarray(sums).tobytes())
    return digest.hexdigest()


def weights_digest(modules):
    digest = hashlib.sha256()
    for module in modules:
        for name, value in module.state_dict().items():
            digest.update(name.encode())
            digest.update(value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


class Checkpoint:
    """Save and restore the state of :func:`skfusemix.engine._loop.train`.

    Parameters
    ----------
    directory : str or path-like
        Where checkpoint files go (created when missing).
    every : int
        Save after every ``every`` epochs (and after the last one).
    identity : dict
        JSON description of the fit; a checkpoint is only resumed by a fit
        with the same identity.  Its hash names the file, so fits with other
        parameters or data (e.g. the folds of a grid search) never collide.
    """

    def __init__(self, directory, every, identity):
        self.every = every
        self.identity = json.loads(json.dumps(identity, sort_keys=True))
        key = hashlib.sha256(
            json.dumps(self.identity, sort_keys=True).encode()
        ).hexdigest()[:16]
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, f"fusemix-fit-{key}.safetensors")

    def save(self, run, modules, optimizer, generator, stopper):
        tensors = module_tensors(dict(zip(_MODULE_NAMES, modules)))
        state = optimizer.state_dict()
        for index, entries in state["state"].items():
            for key, value in entries.items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
        tensors.update(_rng_tensors(generator))
        if stopper is not None:
            for i, tensor in enumerate(stopper.best):
                tensors[f"early_stopping.best.{i}"] = tensor
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "identity": self.identity,
            "history": run.history,
            "n_steps": run.n_steps,
            "finished": run.finished,
            "param_groups": state["param_groups"],
            "early_stopping": None
            if stopper is None
            else {
                "best_score": stopper.best_score,
                "no_improvement": stopper.no_improvement,
            },
        }
        os.makedirs(self.directory, exist_ok=True)
        write_safetensors(self.path, tensors, {"skfusemix": json.dumps(meta)})

    def restore(self, run, modules, optimizer, generator, stopper):
        """Load the checkpoint of this fit into the arguments, if there is
        one; return whether one was loaded.  Raises ValueError, before
        changing anything, for a file that does not fit."""
        if not os.path.exists(self.path):
            return False
        tensors, header = read_safetensors(self.path)
        try:
            meta = json.loads(header["skfusemix"])
        except (KeyError, json.JSONDecodeError):
            raise ValueError(f"{self.path!r} is not a skfusemix checkpoint.") from None
        self._check(meta, tensors, optimizer, stopper)

        model = {k: v for k, v in tensors.items() if k.split(".")[0] in _MODULE_NAMES}
        load_module_tensors(
            dict(zip(_MODULE_NAMES, modules)), model, f"Checkpoint {self.path!r}"
        )
        state = {"state": {}, "param_groups": meta["param_groups"]}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state["state"].setdefault(int(index), {})[name] = value
        for group in state["param_groups"]:
            group["betas"] = tuple(group["betas"])
        optimizer.load_state_dict(state)
        _set_rng(tensors, generator)
        if stopper is not None:
            with torch.no_grad():
                for i, tensor in enumerate(stopper.best):
                    tensor.copy_(tensors[f"early_stopping.best.{i}"])
            stopper.best_score = float(meta["early_stopping"]["best_score"])
            stopper.no_improvement = int(meta["early_stopping"]["no_improvement"])
        run.history = {k: list(v) for k, v in meta["history"].items()}
        run.n_steps = int(meta["n_steps"])
        run.finished = bool(meta["finished"])
        return True

    def _check(self, meta, tensors, optimizer, stopper):
        def bad(message):
            return ValueError(
                f"Checkpoint {self.path!r} cannot be resumed: {message}.  Delete it to "
                "start the fit over."
            )

        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise bad("it is not a skfusemix checkpoint")
        if meta.get("format_version") != FORMAT_VERSION:
            raise bad(
                f"format version {meta.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        if meta.get("identity") != self.identity:
            raise bad("it belongs to a different fit (parameters or data differ)")
        history = meta.get("history")
        if not isinstance(history, dict) or set(history) != set(
            ["epoch", "loss", "temperature", "lr", "time"]
            + (["val_score"] if stopper is not None else [])
        ):
            raise bad("its history does not match this fit")
        if (stopper is None) != (meta.get("early_stopping") is None):
            raise bad("its early-stopping record does not match this fit")
        params = [p for g in optimizer.param_groups for p in g["params"]]
        expected = {}
        for i, p in enumerate(params):
            expected[f"optimizer.{i}.step"] = ()
            expected[f"optimizer.{i}.exp_avg"] = tuple(p.shape)
            expected[f"optimizer.{i}.exp_avg_sq"] = tuple(p.shape)
        if stopper is not None:
            for i, tensor in enumerate(stopper.best):
                expected[f"early_stopping.best.{i}"] = tuple(tensor.shape)
        for key in ("rng.batches", "rng.torch") + (
            ("rng.cuda",) if "rng.cuda" in tensors else ()
        ):
            expected[key] = None
        other = {
            k: v for k, v in tensors.items() if k.split(".")[0] not in _MODULE_NAMES
        }
        if set(other) != set(expected):
            diff = sorted(set(other) ^ set(expected))
            raise bad(
                f"its tensors differ from this fit's optimiser state ({diff[:5]})"
            )
        for key, shape in expected.items():
            if shape is not None and tuple(other[key].shape) != shape:
                raise bad(
                    f"{key} has shape {tuple(other[key].shape)}, expected {shape}"
                )
        groups = meta.get("param_groups")
        if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
            raise bad("its optimiser parameter groups do not match this fit")


def _rng_tensors(generator):
    tensors = {"rng.batches": generator.get_state(), "rng.torch": torch.get_rng_state()}
    if generator.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(generator.device)
    return tensors


def _set_rng(tensors, generator):
    generator.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.torch"])
    if generator.device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], generator.device)
