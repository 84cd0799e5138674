"""Out-of-core encoding into a resumable .npy file (encode_to_npy)."""

import json
import os

import numpy as np
import pytest
import torch

from skfusemix.encoders import (
    TorchEncoder,
    encode_to_npy,
    latent_metadata,
    read_latent_metadata,
)


class _Net(torch.nn.Module):
    def __init__(self, d_in=5, d_out=3):
        super().__init__()
        self.linear = torch.nn.Linear(d_in, d_out)

    def forward(self, x):
        return torch.tanh(self.linear(x))


def _encoder(seed=0, **params):
    torch.manual_seed(seed)
    return TorchEncoder(_Net(), pooling=None, **params)


class Interrupt(Exception):
    pass


class LazyRows:
    """A sequence with len and slicing that loads rows on demand and can fail."""

    def __init__(self, data, fail_at_chunk=None, chunk_size=None):
        self.data = data
        self.fail_at = None if fail_at_chunk is None else fail_at_chunk * chunk_size
        self.reads = []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        start = index.start or 0
        if self.fail_at is not None and start == self.fail_at:
            raise Interrupt(f"interrupted at row {start}")
        self.reads.append(start)
        return self.data[index]


@pytest.fixture
def rows():
    return np.random.default_rng(0).standard_normal((23, 5)).astype(np.float32)


def test_encode_to_npy_matches_transform_and_writes_metadata(tmp_path, rows):
    encoder = _encoder(batch_size=4)
    path = tmp_path / "z.npy"
    Z = encode_to_npy(encoder, rows, path, chunk_size=5)
    np.testing.assert_allclose(Z, encoder.transform(rows), atol=1e-6)
    assert isinstance(Z, np.memmap) and Z.dtype == np.float32
    np.testing.assert_array_equal(np.load(path), Z)
    meta = read_latent_metadata(path)
    assert meta["shape"] == [23, 3] and meta["dtype"] == "float32"
    assert meta["complete"] is True and meta["encoder"] == "TorchEncoder"
    assert meta["params"]["pooling"] is None and meta["params"]["normalize"] is False
    assert meta["model"] == "_Net"
    assert not os.path.exists(str(path) + ".progress.json")
    # the metadata is plain JSON beside the file
    with open(str(path) + ".json") as f:
        assert json.load(f)["n_samples"] == 23


def test_interrupted_run_resumes_to_identical_bytes(tmp_path, rows):
    reference = tmp_path / "reference.npy"
    encode_to_npy(_encoder(), rows, reference, chunk_size=4)

    path = tmp_path / "z.npy"
    data = LazyRows(rows, fail_at_chunk=3, chunk_size=4)
    with pytest.raises(Interrupt):
        encode_to_npy(_encoder(), data, path, chunk_size=4)
    with open(str(path) + ".progress.json") as f:
        assert json.load(f) == {"n_done": 12}
    assert read_latent_metadata(path)["complete"] is False
    with pytest.raises(ValueError, match="incomplete"):
        read_latent_metadata(path, expected_encoder=_encoder())

    resumed = LazyRows(rows)
    encode_to_npy(_encoder(), resumed, path, chunk_size=4)
    assert 0 not in resumed.reads[1:] and resumed.reads[1] == 12  # continued at row 12
    assert path.read_bytes() == reference.read_bytes()
    assert read_latent_metadata(path, expected_encoder=_encoder())["complete"]

    # running again on a complete file reads nothing but the first chunk
    again = LazyRows(rows)
    encode_to_npy(_encoder(), again, path, chunk_size=4)
    assert again.reads == [0]
    assert path.read_bytes() == reference.read_bytes()


def test_resume_from_a_generator_with_n_samples(tmp_path, rows):
    reference = tmp_path / "reference.npy"
    encode_to_npy(_encoder(), rows, reference, chunk_size=6)
    path = tmp_path / "z.npy"

    def generate(fail_after=None):
        for i, row in enumerate(rows):
            if i == fail_after:
                raise Interrupt
            yield row

    with pytest.raises(Interrupt):
        encode_to_npy(
            _encoder(), generate(fail_after=14), path, chunk_size=6, n_samples=23
        )
    encode_to_npy(_encoder(), generate(), path, chunk_size=6, n_samples=23)
    assert path.read_bytes() == reference.read_bytes()
    with pytest.raises(TypeError, match="n_samples"):
        encode_to_npy(_encoder(), generate(), tmp_path / "x.npy")
    with pytest.raises(ValueError, match="does not match"):
        encode_to_npy(_encoder(), generate(), tmp_path / "y.npy", n_samples=30)


def test_existing_file_from_other_encoder_or_data_is_not_reused(tmp_path, rows):
    path = tmp_path / "z.npy"
    encode_to_npy(_encoder(), rows, path, chunk_size=5)
    with pytest.raises(FileExistsError, match="overwrite"):
        encode_to_npy(_encoder(normalize=True), rows, path, chunk_size=5)
    with pytest.raises(FileExistsError, match="overwrite"):
        encode_to_npy(_encoder(), rows[::-1], path, chunk_size=5)
    with pytest.raises(FileExistsError, match="overwrite"):
        encode_to_npy(_encoder(), rows, path, chunk_size=7)
    Z = encode_to_npy(
        _encoder(normalize=True), rows, path, chunk_size=5, overwrite=True
    )
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-6)
    assert read_latent_metadata(path)["params"]["normalize"] is True


def test_read_latent_metadata_checks_expected_encoder(tmp_path, rows):
    path = tmp_path / "z.npy"
    encode_to_npy(_encoder(), rows, path, chunk_size=8)
    read_latent_metadata(path, expected_encoder=_encoder(batch_size=2))  # run params
    with pytest.raises(ValueError, match="params.normalize"):
        read_latent_metadata(path, expected_encoder=_encoder(normalize=True))
    with pytest.raises(FileNotFoundError, match="sidecar"):
        read_latent_metadata(tmp_path / "nothing.npy")
    assert latent_metadata(_encoder())["params"]["pooling"] is None


def test_encode_to_npy_bad_arguments(tmp_path, rows):
    with pytest.raises(ValueError, match="chunk_size"):
        encode_to_npy(_encoder(), rows, tmp_path / "z.npy", chunk_size=0)
    with pytest.raises(ValueError, match="empty"):
        encode_to_npy(_encoder(), rows[:0], tmp_path / "z.npy")
    with pytest.raises(ValueError, match="n_samples"):
        encode_to_npy(_encoder(), rows, tmp_path / "z.npy", n_samples=3)
