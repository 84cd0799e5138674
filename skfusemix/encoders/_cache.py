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

__all__ = ["LatentStore"]

logger = logging.getLogger(__name__)

_SUBDIR = "skfusemix_encoders"


class LatentStore:
    """The shards of one encoder configuration in one cache directory."""

    def __init__(self, location, key, description=None):
        self.directory = os.path.join(os.fspath(location), _SUBDIR, key)
        self.description = description

    def lookup(self, digests):
        """Return ``(values, found)`` for a list of 16-byte digests.

        ``values`` has one row per digest (rows not found are undefined) or is
        None when nothing was found; ``found`` is a boolean mask.
        """
        found = np.zeros(len(digests), dtype=bool)
        if not os.path.isdir(self.directory):
            return None, found
        wanted = {d: i for i, d in enumerate(digests)}
        values = None
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(".keys.npy"):
                continue
            shard = name[: -len(".keys.npy")]
            try:
                keys = np.load(os.path.join(self.directory, name))
            except (OSError, ValueError):
                logger.warning("Ignoring unreadable cache shard %s", name)
                continue
            rows, targets = [], []
            raw = keys.tobytes()
            for row in range(len(keys)):
                k = raw[16 * row : 16 * row + 16]
                i = wanted.get(k)
                if i is not None and not found[i]:
                    rows.append(row)
                    targets.append(i)
            if not rows:
                continue
            data = np.load(os.path.join(self.directory, shard + ".npy"), mmap_mode="r")
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
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def _atomic_write_text(path, text):
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
