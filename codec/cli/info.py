"""`ldmz info`: print a `.ldmz` header readably (or as JSON) and check its checksums; no torch."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from ldmz.codec.cli import plural
from ldmz.formats import ChunkEntry, FormatError, LdmzFile
from ldmz.formats.printable import printable


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `info` sub-command."""
    from ldmz.codec.cli import sub_parser

    p = sub_parser(
        sub, "info", help="show a .ldmz file's header, bitrate and integrity",
        description="Print each file's header readably: duration, channels, model, bits, "
                    "bitrate, tags. Every chunk's checksum is verified; a damaged file still "
                    "shows its intact header, then lists its damaged chunks (exit 1). Needs "
                    "no torch.",
        examples=[("ldmz info song.ldmz", "the header and its checksums"),
                  ("ldmz info --json *.ldmz | jq .bitrate_kbps", "machine-readable")])
    p.add_argument("files", nargs="+", metavar="FILE", help="the .ldmz files to show")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--verify", action="store_true",
                   help="also inflate every chunk and check its values (slower; by default "
                        "the header and every chunk's CRC-32 and zstd frame are checked)")
    p.set_defaults(run=run)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def summary(f: LdmzFile, file_size: int, verified: str = "crc",
            chunk_index: bool = True) -> dict[str, Any]:
    """Readable facts about a file: duration, bitrate, compression ratio and the header."""
    h = f.header
    dur = h.duration
    q = h.quantizer
    return {
        "file": f.name,
        "duration_s": round(dur, 4),
        "channels": h.source.channels,
        "sample_rate": h.source.sample_rate,
        "model": h.model.id,
        "coding": {"affine": "affine+zstd", "float16": "float16+zstd"}.get(q.mode, "rans"),
        "bits": "float16" if q.mode == "float16" else list(q.bits),
        **({"quality": q.quality, "tables_sha256": q.tables_sha256,
            "predicted": _predicted(h.chunks)} if q.mode == "rans" else {}),
        "bits_per_value": [round(b, 4) for b in f.chunk_bits_per_value()],
        "header_bytes": file_size - h.data_size,
        "bitrate_kbps": _round(h.bitrate_kbps(file_size), 3),
        "compression_ratio": _round(h.compression_ratio(file_size), 2),
        "chunks": len(h.chunks),
        "file_bytes": file_size,
        "checksums_ok": True,
        "damaged_chunks": [],
        "verified": verified,
        # the text view never shows the chunk index: 65536 entries are not converted for it
        "header": (h if chunk_index else replace(h, chunks=())).to_dict(),
    }


def _predicted(chunks: Sequence[ChunkEntry]) -> dict[str, int]:
    """Format 2.1: in how many chunks audio channel a was coded from channel b ("a<-b")."""
    out: dict[str, int] = {}
    for c in chunks:
        for a, j in enumerate(c.joint, 1):
            if j:
                out[f"{a}<-{j[0]}"] = out.get(f"{a}<-{j[0]}", 0) + 1
    return out


def _text(s: dict[str, Any]) -> str:
    h = s["header"]
    mel = h["mel"]
    lat = h["latent"]
    bits = s["bits"] if isinstance(s["bits"], str) else (
        f"{s['bits'][0]}" if len(set(s["bits"])) == 1 else "/".join(map(str, s["bits"])))
    p = printable
    coding = s["coding"] + (f", quality {s['quality']}, tables {p(s['tables_sha256'])}"
                            if "quality" in s else f", {bits} bits")
    if s.get("predicted"):
        coding += "; " + ", ".join(f"channel {k.replace('<-', ' from ')} in {v} of "
                                   f"{s['chunks']} chunks" for k, v in s["predicted"].items())
    bpv = s["bits_per_value"]
    per = " ".join(f"{b:.2f}" for b in bpv[:12]) + (" ..." if len(bpv) > 12 else "")
    tags = ", ".join(f"{p(k)}={p(repr(v))}" for k, v in h["tags"].items()) or "-"
    kbps = "-" if s["bitrate_kbps"] is None else f"{s['bitrate_kbps']:.2f} kbps"
    ratio = "-" if s["compression_ratio"] is None else f"{s['compression_ratio']:.1f}:1"
    lines = [
        p(s["file"]),
        f"  duration     {s['duration_s']:.3f} s, {s['channels']} ch @ {s['sample_rate']} Hz",
        f"  model        {p(h['model']['id'])} {p(h['model']['revision'] or '')}".rstrip(),
        *([f"  decoder      fine-tuned, weights {p(h['model']['decoder_sha256'][:12])}"]
          if h["model"].get("decoder_sha256") else []),
        f"  mel          {mel['n_mels']} mels @ {mel['sample_rate']} Hz, n_fft {mel['n_fft']}, "
        f"hop {mel['hop_length']}, win {mel['win_length']}, {mel['fmin']:g}-{mel['fmax']:g} Hz",
        f"  latent       {lat['channels']} x {lat['frames']} x {lat['freq_bins']} "
        f"(ch x frames x freq)",
        f"  chunks       {plural(s['chunks'], 'chunk')} of "
        f"{plural(lat['frames_per_chunk'], 'frame')} (+{lat['overlap']} overlap)",
        f"  coding       {coding}",
        f"  bits/value   {per or '-'} (per chunk; header {s['header_bytes']} bytes)",
        f"  bitrate      {kbps}  (compression {ratio} vs 16-bit PCM)",
        f"  vocoder      {p(h['vocoder']) or '-'}",
        f"  tags         {tags}",
        f"  writer       {p(h['writer']) or '-'}",
    ]
    bad = s.get("damaged_chunks", [])
    if not bad:
        lines.append("  checksums    OK" + ("" if s.get("verified") == "full" else
                                            " (CRC-32 of the header and chunks; --verify also "
                                            "inflates the chunks)"))
    else:
        lines.append(f"  checksums    DAMAGED: {plural(len(bad), 'chunk')} of {s['chunks']}")
        lines += [f"    chunk {d['chunk']:<4} {d['start_s']:8.2f}-{d['end_s']:.2f} s  "
                  f"{printable(d['problem'])}" for d in bad]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print each file; damaged ones get one line on stderr. Exit 0 only if all are intact.

    A file whose header is intact is shown, with its damaged chunks listed. Cost follows the
    file's size: the header is parsed and every chunk's CRC-32 and zstd frame header checked;
    chunks are inflated only when --verify asks for it.
    """
    from ldmz.codec.cli.salvage import damaged_chunks, open_damaged

    rc = 0
    for path in args.files:
        try:
            with open_damaged(path) as f:
                damage = damaged_chunks(f, inflate=args.verify)
                s = summary(f, f.file_size, "full" if args.verify else "crc", args.json)
        except FormatError as e:
            print(printable(e), file=sys.stderr)
            rc = 1
            continue
        except OSError as e:  # e.g. the file vanished after it was read
            print(printable(f"{path}: {e.strerror or e}"), file=sys.stderr)
            rc = 1
            continue
        if damage:
            rc = 1
            s["checksums_ok"] = False
            s["damaged_chunks"] = [asdict(d) for d in damage]
            print(printable(f"{path}: {plural(len(damage), 'damaged chunk')} of {s['chunks']} "
                            f"({damage[0].describe()}{', ...' if len(damage) > 1 else ''}); "
                            f"`ldmz decode --salvage` recovers the rest"), file=sys.stderr)
        print(json.dumps(s) if args.json else _text(s), flush=True)
    return rc
