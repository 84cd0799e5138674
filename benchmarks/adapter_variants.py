"""Variants of the adapters tried against the defaults and rejected on the
validation splits, scored as ``join_weights.py`` scores the defaults: the
adapters alone (``c, a = 0, 0``) and joined with the CCA and the anchors
(``0.3, 0.3``, the defaults' weights).

* ``--variant cca-init``: each adapter starts as the closed-form CCA (the
  direction the issue proposed): the projection's first ``k`` rows are the
  CCA's canonical weights times the squared canonical correlations (scaled
  to the RMS of PyTorch's default initialisation), its other rows the default
  initialisation times 0.1, and every residual block starts at the identity
  (``fc2`` zero); FuseMix then refines it.
* ``--variant whiten``: each modality is ZCA-whitened on the training pairs
  (covariance shrunk by 0.1 times its mean eigenvalue) before the adapters.
* ``--set KEY=VALUE`` (repeatable): any ``FuseMixAligner`` parameter, e.g.
  ``--set dropout=0.5`` or ``--set learn_temperature=false --set
  temperature=0.1``.

The other options are those of ``join_weights.py`` (``--data``, ``--seeds``,
``--weights``, ``--cache``, ``--json``).  Rows of the runs reported in the
docs are in ``RESULTS_adapter_variants.json``.

Run::

    python benchmarks/adapter_variants.py --variant cca-init --weights 0,0 0.3,0.3
    python benchmarks/adapter_variants.py --set dropout=0.5 --data speech-names
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import join_weights  # noqa: E402

from skfusemix import FuseMixAligner  # noqa: E402


class CCAInitAligner(FuseMixAligner):
    """Adapters that start from the CCA solution."""

    def _fit_cca(self, X, y, train_idx):
        self._start = self._training_cca(X, y, train_idx)
        return None if self.cca_weight_ == 0 else self._start

    def _initial_modules(self, warm, d_x, d_y, device, stats):
        modules = super()._initial_modules(warm, d_x, d_y, device, stats)
        cca = self._start
        corr = cca.canonical_correlations_**cca.corr_power
        with torch.no_grad():
            for adapter, weights in zip(modules, (cca.x_weights_, cca.y_weights_)):
                for block in adapter.blocks:
                    block.fc2.weight.zero_()
                    block.fc2.bias.zero_()
                start = torch.as_tensor((weights * corr).T, dtype=torch.float32)
                k, d = start.shape
                start *= (1 / np.sqrt(3 * d)) / start.pow(2).mean().sqrt()
                adapter.proj.weight.mul_(0.1)
                adapter.proj.weight[:k] = start.to(adapter.proj.weight.device)
                adapter.proj.bias.zero_()
        return modules


class Whitened:
    """ZCA whitening of each modality on the training pairs, then the
    aligner (only what ``join_weights.py`` calls)."""

    def __init__(self, aligner, shrinkage=0.1):
        self.aligner, self.shrinkage = aligner, shrinkage

    def _whitener(self, Z):
        mean = Z.mean(0)
        evals, evecs = np.linalg.eigh(np.cov(Z - mean, rowvar=False))
        evals = np.clip(evals, 0, None) + self.shrinkage * evals.mean()
        return mean, (evecs / np.sqrt(evals)) @ evecs.T

    def fit(self, X, y):
        self.wx_, self.wy_ = self._whitener(X), self._whitener(y)
        self.aligner.fit(self._apply(self.wx_, X), self._apply(self.wy_, y))
        self.n_components_ = self.aligner.n_components_
        return self

    @staticmethod
    def _apply(whitener, Z):
        return ((Z - whitener[0]) @ whitener[1]).astype(np.float32)

    def transform(self, X):
        return self.aligner.transform(self._apply(self.wx_, X))

    def transform_y(self, y):
        return self.aligner.transform_y(self._apply(self.wy_, y))


def parse_value(text):
    """``KEY=VALUE``'s value: a JSON number, ``true``/``false``, or a string."""
    try:
        return json.loads(text.lower() if text.lower() in ("true", "false") else text)
    except json.JSONDecodeError:
        return text


def main(argv=None):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--variant", choices=["none", "cca-init", "whiten"], default="none"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args, rest = parser.parse_known_args(argv)
    params = {}
    for item in args.set:
        key, _, value = item.partition("=")
        params[key] = parse_value(value)
    cls = CCAInitAligner if args.variant == "cca-init" else FuseMixAligner

    def make(**kwargs):
        aligner = cls(**{**kwargs, **params})
        return Whitened(aligner) if args.variant == "whiten" else aligner

    join_weights.FuseMixAligner = make
    return join_weights.main(rest)


if __name__ == "__main__":
    sys.exit(main())
