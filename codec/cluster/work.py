"""The per-file work of a dataset encode: read audio (a Ray task), encode and write (an actor).

Both are plain functions and a class, so the in-process path and the Ray path run the same code.
A bad input never raises out of here: it becomes a row with status "error" and one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import numpy as np

from ldmz.codec.cluster import manifest
from ldmz.codec.params import EncodeParams
from ldmz.formats import Header


def settings_json(params: EncodeParams, tags: Mapping[str, str] | None,
                  source_tags: bool = True) -> str:
    """The settings that decide the output bytes, as canonical JSON (the manifest's match key)."""
    keep = {k: v for k, v in asdict(params).items() if k not in ("device", "offline")}
    return json.dumps({**keep, "tags": dict(tags or {}), "source_tags": source_tags},
                      sort_keys=True)


def output_rel(rel: str) -> str:
    """The `.ldmz` path under DST for the input at ``rel``."""
    return str(PurePosixPath(rel).with_suffix(".ldmz"))


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _memory() -> tuple[float, float]:
    """(private resident, peak resident) MB of this process.

    Private (anonymous) memory is what a worker owns; its total resident size also counts the
    pages of Ray's shared object store that it has mapped, which grow until the store has cycled
    once and are not the worker's.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with open("/proc/self/status") as f:
            anon = next(int(ln.split()[1]) for ln in f if ln.startswith("RssAnon:"))
        return anon / 1024, peak
    except (OSError, StopIteration):  # not Linux
        return peak, peak


def _one_line(src: str, e: BaseException) -> str:
    from ldmz.codec.cli.convert import message

    return message(Path(src), e)


def read_row(row: dict) -> dict:
    """Task side: "skip" a file whose output matches the manifest, else decode its audio (and
    its tags, as JSON, when ``row["source_tags"]``)."""
    from ldmz.codec.audio_io import check_audio, read_audio, read_tags

    t0 = time.perf_counter()
    out = {**row, "state": "todo", "audio": b"", "channels": 0, "samples": 0,
           "sample_rate": 0, "error": "", "read_s": 0.0, "tags": "{}"}
    try:
        if row["expect_sha256"] and os.path.isfile(row["out"]) \
                and sha256_file(row["out"]) == row["expect_sha256"]:
            return {**out, "state": "skip"}
        if "://" in row["uri"]:
            audio, sr, tags = _read_remote(row["uri"], row["source_tags"])
        else:
            audio, sr = read_audio(row["uri"])
            tags = read_tags(row["uri"]) if row["source_tags"] else {}
        out["tags"] = json.dumps(tags)
        audio = check_audio(audio, row["uri"])
        out.update(audio=np.ascontiguousarray(audio, np.float32).tobytes(),
                   channels=audio.shape[0], samples=audio.shape[1], sample_rate=sr)
    except Exception as e:  # noqa: BLE001 - a bad input is a row, never the end of the run
        out.update(state="error", error=_one_line(row["uri"], e))
    out["read_s"] = time.perf_counter() - t0
    return out


def _read_remote(uri: str, source_tags: bool) -> tuple[np.ndarray, int, dict]:
    """Fetch a remote input into a temporary file with its suffix, then read it as usual."""
    import tempfile

    from ldmz.codec.audio_io import read_audio, read_tags
    from ldmz.codec.cluster.listing import read_bytes

    suffix = PurePosixPath(uri).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(read_bytes(uri))
        tmp.flush()
        audio, sr = read_audio(tmp.name)
        return audio, sr, read_tags(tmp.name) if source_tags else {}


class Encoder:
    """Encodes rows from :func:`read_row`; the model is loaded once, when the actor starts."""

    def __init__(self, params: dict, tags: dict | None = None, force: bool = False,
                 threads: int = 0, source_tags: bool = True) -> None:
        from ldmz.codec.models import load_model

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.params, self.tags, self.force = EncodeParams(**params), tags or None, force
        p = self.params
        self.model = load_model(p.model_name(), p.device, p.offline or None)
        self.settings = settings_json(p, tags, source_tags)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list]:
        """Ray Data batch -> result batch (one row per input row)."""
        keys = list(batch)
        rows = [self.encode_row(dict(zip(keys, vals, strict=True)))
                for vals in zip(*(batch[k] for k in keys), strict=True)]
        return {k: [r[k] for r in rows] for k in rows[0]}

    def encode_row(self, row: Mapping) -> dict:
        """A manifest row (plus "state" and timing/memory columns) for one read row."""
        t0 = time.perf_counter()
        res = manifest.blank(**{k: row[k] for k in ("path", "output", "source_bytes",
                                                     "source_mtime_ns")})
        res.update(settings=self.settings, state=row["state"],
                   error=row["error"], read_s=float(row["read_s"]), encode_s=0.0, write_s=0.0)
        if row["state"] == "todo":
            try:
                self._encode(row, res)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                res.update(state="error", error=_one_line(row["uri"], e))
        res["status"] = {"todo": "ok", "adopted": "ok", "skip": "ok"}.get(res["state"], "error")
        res["encode_s"] = time.perf_counter() - t0 - res["write_s"]
        res["pid"] = os.getpid()
        res["rss_mb"], res["peak_mb"] = _memory()
        return res

    def _encode(self, row: Mapping, res: dict) -> None:
        from ldmz.codec.api import encode_channels
        from ldmz.formats import write_atomic

        ch, n, sr = int(row["channels"]), int(row["samples"]), int(row["sample_rate"])
        out = Path(row["out"])
        tags = {**json.loads(row["tags"]), **(self.tags or {})}  # as `ldmz encode` merges them
        info = self.model.info
        res.update(duration=n / sr, channels=ch, sample_rate=sr, model_id=info.id,
                   model_revision=info.revision, weights_sha256=info.weights_sha256)
        if out.exists() and not self.force:
            h = self._adopt(out, ch, n, sr, tags)
            res.update(state="adopted", bytes=out.stat().st_size, sha256=sha256_file(out))
        else:
            audio = np.frombuffer(row["audio"], np.float32).reshape(ch, n)
            f = encode_channels(lambda c: audio[c], ch, sr, self.params, tags, None, row["uri"])
            data = f.to_bytes()
            t1 = time.perf_counter()
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, data, overwrite=self.force)
            res["write_s"] = time.perf_counter() - t1
            res.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            h = f.header
        q = h.quantizer
        res.update(frames=h.latent.frames, coding=q.mode,
                   bits=self.params.bits if q.mode == "affine" else 0,
                   quality=q.quality if q.mode == "rans" else -1,
                   kbps=res["bytes"] * 8 / res["duration"] / 1000)

    def _adopt(self, out: Path, ch: int, n: int, sr: int, tags: dict) -> Header:
        """The header of an output a killed run wrote but did not record, if these settings
        made it from this audio; else FileExistsError."""
        from ldmz.formats import LdmzError, LdmzFile

        try:
            f = LdmzFile.load(out)  # every chunk verified
        except LdmzError as e:
            raise FileExistsError(f"{out}: already exists but is damaged ({e}); use --force to "
                                  f"encode it again") from None
        h, m, p = f.header, self.model, self.params
        win = max(1, round(p.chunk_seconds * m.mel.sample_rate
                           / (m.mel.hop_length * m.geometry.time_downsample)))
        same = (h.model.id == m.info.id and h.model.weights_sha256 == m.info.weights_sha256
                and (h.source.sample_rate, h.source.channels, h.source.samples) == (sr, ch, n)
                and h.latent.frames_per_chunk == win and h.vocoder == (p.vocoder or m.vocoder)
                and dict(h.tags) == tags and p.coding in ("auto", h.quantizer.mode)
                and (max(h.quantizer.bits, default=0) <= p.bits if h.quantizer.mode == "affine"
                     else p.quality in (-1, h.quantizer.quality) or p.kbps > 0))
        if not same:
            raise FileExistsError(f"{out}: already exists, made from other audio or settings "
                                  f"(use --force to overwrite)")
        return h
