"""The torch-free dataset reader: manifest or folder -> numpy latents, crops read chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ldmz.formats import LdmzFile, MelParams, ModelInfo, SourceInfo, pack_latents
from ldmz.formats.dataset import LatentDataset, list_items, read_frames, read_item


def _write(path: Path, frames: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((channels, 4, frames, 5)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo("m"), mel=MelParams(),
                     source=SourceInfo(22050, channels, frames * 1024, (1.0,) * channels),
                     bits="float16", frames_per_chunk=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    f.save(path)
    return LdmzFile.load(path).latents()


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    files = {"a/one.ldmz": (40, 1), "a/b/two.ldmz": (21, 2), "three.ldmz": (5, 1)}
    return tmp_path, {k: _write(tmp_path / k, n, c, i)
                      for i, (k, (n, c)) in enumerate(files.items())}


def test_folder_items_and_whole_files(folder: tuple[Path, dict]) -> None:
    root, lat = folder
    items = list_items(root)
    assert [Path(it.path).relative_to(root).as_posix() for it in items] == sorted(lat)
    assert [(it.frames, it.channels) for it in items] == [(21, 2), (40, 1), (5, 1)]
    z = read_item(items[0], channel=1)
    np.testing.assert_array_equal(z, lat["a/b/two.ldmz"][1])


def test_crops_read_only_the_chunks_they_overlap(folder: tuple[Path, dict],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, lat = folder
    read: list[int] = []
    orig = LdmzFile.read_chunk
    monkeypatch.setattr(LdmzFile, "read_chunk", lambda self, i: read.append(i) or orig(self, i))
    f = LdmzFile.load(root / "a/one.ldmz", lazy=True)  # 40 frames in 5 chunks of 8
    for start, n, chunks in [(0, 8, [0]), (9, 6, [1]), (7, 10, [0, 1, 2]), (33, 7, [4])]:
        read.clear()
        np.testing.assert_array_equal(read_frames(f, start, n), lat["a/one.ldmz"][0, :,
                                                                                  start:start + n])
        assert read == chunks
    with pytest.raises(ValueError, match="outside"):
        read_frames(f, 35, 6)


def test_dataset_random_crops_skip_short_files(folder: tuple[Path, dict]) -> None:
    root, lat = folder
    ds = LatentDataset(root, crop=16, seed=3)
    assert len(ds) == 2  # three.ldmz has 5 frames
    starts = set()
    for _ in range(20):
        z = ds[1]  # a/one.ldmz
        assert z.shape == (4, 16, 5)
        full = lat["a/one.ldmz"][0]
        s = next(s for s in range(40 - 16 + 1) if np.array_equal(full[:, s:s + 16], z))
        starts.add(s)
    assert len(starts) > 3  # crops move
    again = LatentDataset(root, crop=16, seed=3)
    np.testing.assert_array_equal(LatentDataset(root, crop=16, seed=3)[0], again[0])


def test_manifest_lists_only_ok_rows(folder: tuple[Path, dict]) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root, _ = folder
    rows = [{"output": "a/one.ldmz", "status": "ok", "frames": 40, "channels": 1},
            {"output": "bad.ldmz", "status": "error", "frames": 0, "channels": 0}]
    pq.write_table(pa.Table.from_pylist(rows), root / "manifest.parquet")
    assert [(Path(i.path).name, i.frames) for i in list_items(root)] == [("one.ldmz", 40)]
    assert len(LatentDataset(root / "manifest.parquet", crop=8)) == 1


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        list_items(tmp_path / "nope")
