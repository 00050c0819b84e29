"""A thin torch Dataset over ``ldmz.formats.dataset``: latent crops as tensors for training."""

from __future__ import annotations

import os

import numpy as np
import torch

from ldmz.codec.models.registry import dataset_tables
from ldmz.formats import EntropyTables
from ldmz.formats.dataset import LatentDataset


class LatentTorchDataset(torch.utils.data.Dataset):
    """``ds[i]``: float32 tensor (latent_ch, crop, freq) from file i, a fresh random crop each
    time; each DataLoader worker draws from its own seed (torch's per-worker seed)."""

    def __init__(self, source: str | os.PathLike, crop: int | None = None,
                 channel: int | None = None, tables: EntropyTables | None = None) -> None:
        """``tables``: for entropy-coded files; default: those of the model named by the first
        file, found in its (embedded or local) model folder."""
        if tables is None:
            tables = dataset_tables(source)
        self.data = LatentDataset(source, crop, channel, tables=tables)
        self._rng: tuple[int, np.random.Generator] | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        seed = torch.initial_seed()
        if self._rng is None or self._rng[0] != seed:
            self._rng = (seed, np.random.default_rng(seed))
        return torch.from_numpy(self.data.read(i, self._rng[1]))
