"""scikit-learn's generic estimator checks, where they apply to raw-input encoders.

The generic checks feed 2-D numeric arrays.  They apply to:

- ``TorchEncoder``: each row is one input of the module;
- ``CallableEncoder``: each row is one input of the function (here a local
  one; tests/test_blackbox.py runs it against an HTTP server);
- ``AudioEncoder``: each row is one waveform (a tiny Whisper with 1-second
  windows accepts any clip length).

They cannot apply to ``TextEncoder`` (inputs are strings) nor to
``ImageEncoder`` (inputs are (H, W, C) images, a row of a 2-D array is not an
image): scikit-learn skips estimators whose ``input_tags.two_d_array`` is
False, which ``test_text_and_image_encoders_declare_raw_input_tags`` checks.
"""

import atexit
import copy
import shutil
import tempfile

import numpy as np
import torch
from helpers import raw_input_expected_failed_checks, save_tiny_whisper
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfusemix.encoders import (
    AudioEncoder,
    CallableEncoder,
    ImageEncoder,
    TextEncoder,
    TorchEncoder,
)


class _RowStats(torch.nn.Module):
    """Width-agnostic module: mean, max and min of each row, scaled."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([1.0, 2.0, 0.5]))

    def forward(self, x):
        return torch.stack([x.mean(1), x.amax(1), x.amin(1)], 1) * self.scale


def _row_stats():
    torch.manual_seed(0)
    return _RowStats()


def _row_stats_batch(batch):
    """A black-box function: mean, max and min of each input row."""
    rows = np.asarray(batch, dtype=np.float64)
    return np.stack([rows.mean(1), rows.max(1), rows.min(1)], 1)


def _tiny_whisper_dir():
    path = tempfile.mkdtemp(prefix="skfusemix-tiny-whisper-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return save_tiny_whisper(path, width=8, mel_bins=8)


_WHISPER = _tiny_whisper_dir()


@parametrize_with_checks(
    [
        TorchEncoder(_row_stats, pooling=None),
        TorchEncoder(_row_stats, pooling=None, normalize=True, batch_size=3),
        AudioEncoder(_WHISPER, batch_size=16),
        CallableEncoder(
            _row_stats_batch, identity="row-stats", batch_size=3, max_concurrency=2
        ),
    ],
    expected_failed_checks=raw_input_expected_failed_checks,
)
def test_sklearn_compatible_encoder(estimator, check):
    check(estimator)


def test_text_and_image_encoders_declare_raw_input_tags():
    text_tags = TextEncoder().__sklearn_tags__()
    assert text_tags.input_tags.string and not text_tags.input_tags.two_d_array
    assert text_tags.requires_fit is False
    image_tags = ImageEncoder().__sklearn_tags__()
    assert image_tags.input_tags.three_d_array and not image_tags.input_tags.two_d_array


def test_fit_does_not_mutate_a_module_parameter():
    # check_estimators_overwrite_params cannot compare torch modules (joblib.hash
    # of a module differs from that of its deepcopy), so check it directly.
    module = _row_stats()
    module.train()
    before = copy.deepcopy(module.state_dict())
    X = np.random.default_rng(0).standard_normal((6, 4))
    TorchEncoder(module, pooling=None).fit_transform(X)
    assert module.training
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)
