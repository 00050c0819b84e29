"""`ldmz encode --ray`: one local Ray cluster (127.0.0.1, temp state) for the module; manifest,
resume after a kill, bad inputs, byte-identity with `ldmz encode`, and the dataset readers."""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main
from ldmz.codec.cluster import manifest
from ldmz.codec.cluster.pipeline import encode_dataset
from ldmz.codec.params import EncodeParams
from ldmz.formats import LdmzFile

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

GOOD = ["a/one.wav", "a/b/two.flac", "three.wav", "a/b/four.wav"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster on loopback, state in a short temp folder (socket paths are short)."""
    state = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", _temp_dir=state,
             include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def tree(tmp_path: Path, signals) -> Path:  # noqa: ANN001
    src = tmp_path / "src"
    for i, rel in enumerate(GOOD):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        x = signals.chirp(0.6 + 0.3 * i, 22050, seed=i)
        with sf.SoundFile(src / rel, "w", 22050 if i else 16000, 2 if i == 1 else 1) as f:
            f.title = f"clip {i}"  # source tags are carried, as `ldmz encode` does
            f.write(np.stack([x, x[::-1]], 1) if i == 1 else x)
    (src / "bad").mkdir()
    (src / "bad/empty.wav").write_bytes(b"")
    (src / "bad/text.wav").write_text("not audio\n" * 20)
    sf.write(src / "bad/silent-zero.wav", np.zeros(0, np.float32), 16000)
    return src


def _rows(dst: Path) -> dict[str, dict]:
    return {r["path"]: r for r in pq.read_table(dst / "manifest.parquet").to_pylist()}


def _stamp(dst: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(dst).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in dst.rglob("*.ldmz")}


def test_cluster_encode_manifest_and_same_bytes(cluster: str, tree: Path, tmp_path: Path,
                                                tiny_patchvae: Path, capsys) -> None:  # noqa: ANN001
    dst = tmp_path / "dst"
    rc = main(["encode", str(tree), "-o", str(dst), "--model", str(tiny_patchvae), "-q",
               "--ray", cluster])
    err = capsys.readouterr().err
    assert rc == 1  # the bad inputs
    assert "4 encoded, 0 already done, 3 failed of 7 files" in err.splitlines()[-1]
    rows = _rows(dst)
    assert set(rows) == {*GOOD, "bad/empty.wav", "bad/text.wav", "bad/silent-zero.wav"}
    assert list(pq.read_schema(dst / "manifest.parquet").names) == list(manifest.COLUMNS)
    for rel in GOOD:
        r, out = rows[rel], dst / Path(rel).with_suffix(".ldmz")
        data = out.read_bytes()
        assert r["status"] == "ok" and r["error"] == "" and r["output"] == \
            Path(rel).with_suffix(".ldmz").as_posix()
        assert r["sha256"] == hashlib.sha256(data).hexdigest() and r["bytes"] == len(data)
        h = LdmzFile.from_bytes(data).header
        assert (r["channels"], r["sample_rate"], r["frames"]) == (
            h.source.channels, h.source.sample_rate, h.latent.frames)
        assert r["duration"] == pytest.approx(h.duration)
        assert r["kbps"] == pytest.approx(len(data) * 8 / h.duration / 1000)
        assert (r["model_id"], r["weights_sha256"], r["coding"], r["bits"], r["quality"]) == (
            h.model.id, h.model.weights_sha256, "affine", 2, -1)
        # the same bytes as `ldmz encode` in one process (same torch thread count: 1)
        single = tmp_path / "single" / out.name
        single.parent.mkdir(exist_ok=True)
        assert main(["encode", str(tree / rel), "-o", str(single), "--model",
                     str(tiny_patchvae), "-q"]) == 0
        assert single.read_bytes() == data, rel
        assert h.tags["title"] == f"clip {GOOD.index(rel)}"
    for rel in ("bad/empty.wav", "bad/text.wav", "bad/silent-zero.wav"):
        assert rows[rel]["status"] == "error" and str(tree / rel) in rows[rel]["error"]
        assert "\n" not in rows[rel]["error"] and not (dst / rel).with_suffix(".ldmz").exists()
    assert rows["a/b/two.flac"]["channels"] == 2
    assert not [p for p in dst.rglob(".*")]  # no temporary files, no journal left

    # A second run skips everything it finished and writes nothing.
    before = _stamp(dst)
    rc = main(["encode", str(tree), "-o", str(dst), "--model", str(tiny_patchvae), "-q",
               "--ray", cluster])
    assert rc == 1 and "0 encoded, 4 already done, 3 failed" in capsys.readouterr().err
    assert _stamp(dst) == before

    # A damaged output is reported, never overwritten without --force (in-process: same code).
    damaged = dst / "three.ldmz"
    damaged.write_bytes(damaged.read_bytes()[:-3])
    s = encode_dataset([str(tree)], dst, EncodeParams(model=str(tiny_patchvae)))
    assert any("three.ldmz: already exists but is damaged" in e for e in s.errors)
    assert _rows(dst)["three.wav"]["status"] == "error"
    s = encode_dataset([str(tree)], dst, EncodeParams(model=str(tiny_patchvae)), force=True)
    assert s.encoded == len(GOOD) and _rows(dst)["three.wav"]["status"] == "ok"


def test_killed_run_resumes_exactly_once(cluster: str, tree: Path, tmp_path: Path,
                                         tiny_patchvae: Path) -> None:
    dst = tmp_path / "dst"
    params = EncodeParams(model=str(tiny_patchvae))
    seen = []

    def kill_after_two(p) -> None:  # noqa: ANN001
        seen.append(p.done)
        if p.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_dataset([str(tree)], dst, params, progress=kill_after_two)
    assert not (dst / "manifest.parquet").exists() and (dst / manifest.JOURNAL).exists()
    journaled = set(manifest.load(dst))
    assert len(journaled) == 2
    # A kill can also land between an output's write and its journal line: drop one line.
    lines = (dst / manifest.JOURNAL).read_text().splitlines()
    (dst / manifest.JOURNAL).write_text(lines[0] + "\n")
    (dst / ".x.ldmz.0123abcd.tmp").write_bytes(b"half")  # a write the kill cut short
    before = _stamp(dst)
    s = encode_dataset([str(tree)], dst, params, ray="")  # the module's cluster
    assert _stamp(dst).items() >= before.items()  # nothing written before was written again
    good = sum(r["status"] == "ok" for r in _rows(dst).values())
    assert good == len(GOOD) and s.failed == 3
    assert s.encoded + s.adopted + s.skipped == len(GOOD)
    assert s.encoded == len(GOOD) - len(before)
    assert (s.adopted, s.skipped) == (len(before) - 1, 1) if before else True
    assert not (dst / ".x.ldmz.0123abcd.tmp").exists()


def test_readers_on_the_encoded_dataset(cluster: str, tree: Path, tmp_path: Path,
                                        tiny_patchvae: Path) -> None:
    import torch

    from ldmz.codec.cluster import read_latents
    from ldmz.codec.dataset import LatentTorchDataset
    from ldmz.formats.dataset import LatentDataset

    dst = tmp_path / "dst"
    encode_dataset([str(tree)], dst, EncodeParams(model=str(tiny_patchvae)))
    frames = min(r["frames"] for r in _rows(dst).values() if r["status"] == "ok")
    ds = LatentDataset(dst, crop=frames)
    assert len(ds) == len(GOOD)
    loader = torch.utils.data.DataLoader(LatentTorchDataset(dst, crop=frames), batch_size=2)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(2, *ds[0].shape)] * 2
    rows = read_latents(dst, crop=frames, seed=0).take_all()
    assert sorted(r["path"] for r in rows) == sorted(it.path for it in ds.items)
    for r in rows:
        whole = LdmzFile.load(r["path"]).latents()
        assert any(np.array_equal(whole[c, :, s:s + frames], r["latents"])
                   for c in range(whole.shape[0]) for s in range(whole.shape[2] - frames + 1))


def test_without_ray_one_line(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys) -> None:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["encode", str(tree), "-o", str(tmp_path / "d"), "--ray"]) == 1
    err = capsys.readouterr().err
    assert err == "ldmz encode: --ray needs ray: pip install 'ldmz[cluster]'\n"


def test_collisions_and_layout_from_two_sources(tmp_path: Path, tiny_patchvae: Path,
                                                signals) -> None:  # noqa: ANN001
    for rel in ("x/song.wav", "x/song.flac", "y/other.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, signals.sine(0.3, 16000), 16000)
    dst = tmp_path / "dst"
    s = encode_dataset([str(tmp_path / "x"), str(tmp_path / "y/other.wav")], dst,
                       EncodeParams(model=str(tiny_patchvae)))
    assert (s.encoded, s.failed) == (2, 1)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.ldmz")) == [
        "other.ldmz", "song.ldmz"]
    assert "also that of" in _rows(dst)["song.wav"]["error"]
