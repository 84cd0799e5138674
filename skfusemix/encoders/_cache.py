"""Per-item cache of encoded latents on disk.

Latents are stored under ``<memory.location>/skfusemix_encoders/<key>/``
where ``key`` fingerprints the encoder (model identity and revision, the
parameters that change the output).  Each call that had to encode new items
adds one *shard*: ``<id>.npy`` holds the float32 latents and
``<id>.keys.npy`` the 16-byte digests of the items, written last and
atomically so that a shard is visible only once complete.  A later call, on
any subset of the items, is served row by row from the shards.
"""

import json
import logging
import os
import uuid

import numpy as np

from .._io import atomic_replace

__all__ = ["LatentStore"]

logger = logging.getLogger(__name__)

_SUBDIR = "skfusemix_encoders"

# directory -> (names of the shards read, {digest: (shard, row)})
_INDEXES = {}


class LatentStore:
    """The shards of one encoder configuration in one cache directory."""

    def __init__(self, location, key, description=None):
        self.directory = os.path.join(os.fspath(location), _SUBDIR, key)
        self.description = description

    def _index(self):
        """``{digest: (shard, row)}`` of every complete shard, kept per process.

        Only shards written since the last call are read, so a long run that
        adds one shard per call (e.g. :func:`encode_to_npy` with a cache)
        reads each key file once.
        """
        names = [n for n in os.listdir(self.directory) if n.endswith(".keys.npy")]
        shards, index = _INDEXES.setdefault(self.directory, (set(), {}))
        current = {n[: -len(".keys.npy")] for n in names}
        if not shards <= current:  # shards were deleted: start over
            shards.clear()
            index.clear()
        for shard in sorted(current - shards):
            try:
                keys = np.load(os.path.join(self.directory, shard + ".keys.npy"))
            except (OSError, ValueError):
                logger.warning("Ignoring unreadable cache shard %s", shard)
                continue
            raw = keys.tobytes()
            for row in range(len(keys)):
                index.setdefault(raw[16 * row : 16 * row + 16], (shard, row))
            shards.add(shard)
        return index

    def lookup(self, digests):
        """Return ``(values, found)`` for a list of 16-byte digests.

        ``values`` has one row per digest (rows not found are undefined) or is
        None when nothing was found; ``found`` is a boolean mask.
        """
        found = np.zeros(len(digests), dtype=bool)
        if not os.path.isdir(self.directory):
            return None, found
        index = self._index()
        by_shard = {}
        for i, d in enumerate(digests):
            hit = index.get(d)
            if hit is not None:
                by_shard.setdefault(hit[0], ([], []))
                by_shard[hit[0]][0].append(hit[1])
                by_shard[hit[0]][1].append(i)
        values = None
        for shard, (rows, targets) in sorted(by_shard.items()):
            try:
                data = np.load(
                    os.path.join(self.directory, shard + ".npy"), mmap_mode="r"
                )
            except (OSError, ValueError):
                logger.warning("Ignoring unreadable cache shard %s", shard)
                _INDEXES.pop(self.directory, None)
                continue
            if values is None:
                values = np.empty((len(digests), data.shape[1]), dtype=np.float32)
            elif data.shape[1] != values.shape[1]:
                logger.warning("Ignoring cache shard %s of another width", shard)
                continue
            values[targets] = data[rows]
            found[targets] = True
        return values, found

    def add(self, digests, values):
        """Store the latents ``values`` (n, d) of the items ``digests``."""
        if len(digests) == 0:
            return
        os.makedirs(self.directory, exist_ok=True)
        info = os.path.join(self.directory, "encoder.json")
        if self.description is not None and not os.path.exists(info):
            _atomic_write_text(
                info, json.dumps(self.description, indent=2, default=str)
            )
        shard = uuid.uuid4().hex
        # uint8 rows, not an "S16" array: numpy strips trailing NUL bytes of those
        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 16)
        _atomic_save(os.path.join(self.directory, shard + ".npy"), values)
        _atomic_save(os.path.join(self.directory, shard + ".keys.npy"), keys)
        logger.debug("Cached %d latents in %s", len(digests), self.directory)


def _atomic_save(path, array):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))

    atomic_replace(path, write)


def _atomic_write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_replace(path, write)
