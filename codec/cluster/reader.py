"""The Ray Data reader of a latent dataset: rows {"path", "latents"} parsed by ldmz.formats."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ldmz.codec.cluster import require
from ldmz.formats.dataset import list_items, read_item


def read_latents(source: str | os.PathLike, crop: int | None = None,
                 channel: int | None = None, seed: int | None = None) -> Any:
    """A ``ray.data.Dataset`` of a manifest or folder: one row per file, ``latents`` float32
    (latent_ch, frames, freq), a random crop of ``crop`` frames (files shorter are left out)."""
    from ldmz.codec.models.registry import dataset_tables

    rd = require("ray.data", "read_latents")
    tables = dataset_tables(source)  # entropy-coded files: the model folder's tables
    items = [it for it in list_items(source) if crop is None or it.frames >= crop]
    rows = [{"path": it.path, "index": i} for i, it in enumerate(items)]

    def load(row: dict) -> dict:
        rng = np.random.default_rng(None if seed is None else (seed, int(row["index"])))
        return {"path": row["path"],
                "latents": read_item(row["path"], crop, rng, channel, tables)}

    return rd.from_items(rows).map(load)
