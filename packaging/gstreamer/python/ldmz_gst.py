"""GStreamer plug-in for `.ldmz`: a typefinder, ``ldmzdec`` (decoder) and ``ldmzenc`` (encoder)."""

# Loaded by GStreamer's Python plug-in loader (gstreamer1.0-python3-plugin-loader) from any
# ``<dir>/python/`` where ``<dir>`` is in GST_PLUGIN_PATH. Importing this module must stay cheap
# (every registry scan does it): ldmz, numpy and torch are imported only when a stream starts.
# See packaging/gstreamer/README.md.

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import re
import site
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GObject, Gst  # noqa: E402

LDMZ_CAPS = "audio/x-ldmz"
RAW_CAPS = ("audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
            "rate=(int)[1, 1000000], channels=(int)[1, 64]")
VENV_ENV = "LDMZ_VENV"  # a virtual environment with ldmz installed (its site-packages is used)
VENV_FILE = Path(__file__).with_name("ldmz_gst.venv")  # one line: the same, written at install
BUFFER_SECONDS = 0.1  # decoded audio is pushed in buffers of this length
PLAY_WINDOW = 256  # mel frames per vocoder call (~3 s): first audio soon; output unchanged


# ----------------------------------------------------------------------------- finding ldmz
class SetupError(Exception):
    """ldmz cannot be imported in the Python that GStreamer embeds."""


_import_lock = threading.Lock()


def _site_packages(venv: Path) -> Path | None:
    """The site-packages of ``venv`` for the running Python's major.minor version, if any."""
    tag = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for d in (venv / "lib" / tag / "site-packages", venv / "Lib" / "site-packages"):
        if d.is_dir():
            return d
    return None


def _venv_candidates() -> list[tuple[str, Path]]:
    """(where it came from, venv folder), in the order they are tried."""
    out = []
    if os.environ.get(VENV_ENV):
        out.append((f"${VENV_ENV}", Path(os.environ[VENV_ENV]).expanduser()))
    if VENV_FILE.is_file():
        text = VENV_FILE.read_text(encoding="utf-8").strip()
        if text:
            out.append((str(VENV_FILE), Path(text).expanduser()))
    here = Path(__file__).resolve()
    if len(here.parents) > 3 and here.parents[1].name == "gstreamer":  # in the source tree
        out.append(("the source tree", here.parents[3] / ".venv"))
    return out


def _add_site(sp: Path) -> None:
    """Put ``sp`` (and what its .pth files add, e.g. editable installs) first on sys.path."""
    before = list(sys.path)
    site.addsitedir(str(sp))
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before


def import_ldmz() -> Any:
    """Import and return ``ldmz.codec.api``, adding the venv ldmz lives in to sys.path first."""
    with _import_lock:
        if "ldmz.codec.api" in sys.modules:
            return sys.modules["ldmz.codec.api"]
        if not getattr(sys, "argv", None):  # the embedded interpreter has none; some libraries
            sys.argv = ["gst-ldmz"]          # read sys.argv[0]
        tried = []
        for origin, venv in _venv_candidates():
            sp = _site_packages(venv)
            if sp is None:
                tried.append(f"{venv} (from {origin}) has no site-packages for Python "
                             f"{sys.version_info.major}.{sys.version_info.minor}")
                if origin.startswith("$"):
                    break  # an explicit setting that is wrong: say so, do not guess further
                continue
            if str(sp) not in sys.path:
                _add_site(sp)
            tried.append(f"not in {sp} (from {origin})")
            break
        try:
            import ldmz.codec.api as api
        except ImportError as e:
            why = "; ".join(tried) or "no venv found"
            raise SetupError(
                f"cannot import ldmz in GStreamer's Python {sys.version.split()[0]} ({e}; "
                f"{why}): set {VENV_ENV} to the venv ldmz is installed in") from e
        return api


# ----------------------------------------------------------------------------- helpers
def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _post_error(el: Gst.Element, domain: int, code: int, e: BaseException) -> None:
    """Post an ERROR message: ``e`` as one line; its type (and, if unexpected, where) as debug."""
    ldmz_err = type(e).__module__.startswith("ldmz.") or isinstance(e, SetupError)
    debug = f"{type(e).__module__}.{type(e).__qualname__}"
    if not ldmz_err:
        where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
        debug += "".join(f" at {f.filename}:{f.lineno}" for f in where)
    el.message_full(Gst.MessageType.ERROR, domain, code, _one_line(e), debug, __file__,
                    type(el).__name__, 0)


def _upstream_name(pad: Gst.Pad) -> str:
    """The file name upstream reports (URI query), for error messages."""
    q = Gst.Query.new_uri()
    if pad.peer_query(q):
        uri = q.parse_uri()
        if uri:
            if uri.startswith("file://"):
                path = Gst.uri_get_location(uri) or uri
                return os.path.basename(path) or path
            return uri
    return "<ldmz stream>"


def _pad(el: Gst.Element, name: str) -> Gst.Pad:
    pad = Gst.Pad.new_from_template(el.get_pad_template(name), name)
    el.add_pad(pad)
    return pad


def _add_pads(el: Gst.Element) -> None:
    """The sink pad (fed to ``el._chain`` / ``el._sink_event``) and a fixed-caps src pad."""
    el.sinkpad = _pad(el, "sink")
    el.sinkpad.set_chain_function_full(el._chain)
    el.sinkpad.set_event_function_full(el._sink_event)
    el.srcpad = _pad(el, "src")
    el.srcpad.use_fixed_caps()


_TAGS = {"title": Gst.TAG_TITLE, "artist": Gst.TAG_ARTIST, "album": Gst.TAG_ALBUM,
         "comment": Gst.TAG_COMMENT, "genre": Gst.TAG_GENRE}


# ----------------------------------------------------------------------------- typefinder
_libgst: Any = None


def _peek(find: Gst.TypeFind, size: int) -> bytes | None:
    """The first ``size`` bytes of the stream, or None.

    GStreamer 1.22's introspection data makes ``TypeFind.peek`` take no size (it reads 0 bytes),
    so this calls ``gst_type_find_peek`` through ctypes on the struct's address.
    """
    global _libgst
    try:
        data = find.peek(0, size)  # bindings where the size is a parameter
        data = data[0] if isinstance(data, tuple) else data
        if data is not None and len(data) >= size:
            return bytes(data[:size])
    except TypeError:
        pass
    m = re.search(r" at (0x[0-9a-fA-F]+)\)>$", repr(find))
    if m is None:
        return None
    if _libgst is None:
        _libgst = ctypes.CDLL(ctypes.util.find_library("gstreamer-1.0")
                              or "libgstreamer-1.0.so.0")
        _libgst.gst_type_find_peek.restype = ctypes.c_void_p
        _libgst.gst_type_find_peek.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint]
    p = _libgst.gst_type_find_peek(int(m.group(1), 16), 0, size)
    return ctypes.string_at(p, size) if p else None


def typefind(find: Gst.TypeFind, *_data: object) -> None:
    """Suggest audio/x-ldmz for streams that start with the magic ``LDMZ``."""
    try:
        head = _peek(find, 8)
    except Exception:  # a typefinder must never break other formats' detection
        return
    if head and head[:4] == b"LDMZ":
        sure = head[4] == 1 and head[6:8] == b"\0\0"  # major version 1, flags 0
        prob = Gst.TypeFindProbability.MAXIMUM if sure else Gst.TypeFindProbability.LIKELY
        find.suggest(prob, Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int){head[4]}"))


# ----------------------------------------------------------------------------- decoder
def _from_chunk(f: Any, raw: bytes, k: int) -> tuple[Any, int]:
    """A file holding chunks ``k..`` of ``f`` (a suffix of the same stream) and the source
    sample it starts at, so that a seek decodes from the chunk that holds the target."""
    if k <= 0:
        return f, 0
    from dataclasses import replace

    from ldmz.formats import LdmzFile

    h = f.header
    first = h.chunks[k]
    skip_mel = first.frame_start * h.latent.time_downsample
    start = min(round(skip_mel * h.mel.hop_length * h.source.sample_rate / h.mel.sample_rate),
                h.source.samples)
    base = 16 + int.from_bytes(raw[8:12], "little")  # the data section (SPEC.md, section 3)
    chunks = tuple(replace(c, frame_start=c.frame_start - first.frame_start,
                           offset=c.offset - first.offset) for c in h.chunks[k:])
    sub = replace(
        h, chunks=chunks,
        source=replace(h.source, samples=h.source.samples - start),
        latent=replace(h.latent, frames=h.latent.frames - first.frame_start,
                       mel_frames=max(0, h.latent.mel_frames - skip_mel)
                       if h.latent.mel_frames else 0))
    blobs = [raw[base + c.offset:base + c.offset + c.size] for c in h.chunks[k:]]
    out = LdmzFile(sub, blobs)
    out.name = f.name
    return out, start


class LdmzDec(Gst.Element):
    """Decode a whole `.ldmz` stream to F32LE interleaved audio at the file's rate/channels."""

    __gtype_name__ = "GstLdmzDec"
    __gstmetadata__ = ("ldmz decoder", "Codec/Decoder/Audio",
                       "Decodes .ldmz neural audio codec files (VAE latents) to raw audio",
                       "The ldmz developers")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(LDMZ_CAPS)),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(RAW_CAPS)),
    )
    vocoder = GObject.Property(type=str, default="", nick="Vocoder",
                               blurb="hifigan, universal or griffinlim; empty: the file's own")
    device = GObject.Property(type=str, default="auto", nick="Device",
                              blurb="torch device: auto, cpu, cuda, ...")

    def __init__(self) -> None:
        super().__init__()
        _add_pads(self)
        self.srcpad.set_query_function_full(self._src_query)
        self.srcpad.set_event_function_full(self._src_event)
        self._reset()

    def _reset(self) -> None:
        self._data = bytearray()
        self._name = "<ldmz stream>"
        self._started = False  # the whole input has arrived
        self._file: Any = None  # the parsed, verified LdmzFile (for seeks)
        self._raw = b""
        self._duration = -1  # ns, once the header is known
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._offset = 0  # next output sample
        self._rate = 0
        self._discont = True
        self._model_id = ""
        self._tags = Gst.TagList.new_empty()

    # --- input: collect the file
    def _chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        if self._started:
            return Gst.FlowReturn.EOS
        self._data += buf.extract_dup(0, buf.get_size())
        return Gst.FlowReturn.OK

    def _sink_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        t = event.type
        if t == Gst.EventType.EOS:
            if not self._started:
                self._started = True
                self._name = _upstream_name(self.sinkpad)
                seg = Gst.Segment()
                seg.init(Gst.Format.TIME)
                self._launch(bytes(self._data), seg, Gst.util_seqnum_next())
                self._data = bytearray()
            return True
        if t in (Gst.EventType.CAPS, Gst.EventType.SEGMENT, Gst.EventType.TAG):
            return True  # ours are sent with the audio
        if t == Gst.EventType.FLUSH_STOP:
            self._stop.set()
            self._reset()
        return pad.event_default(parent, event)

    # --- output: a producer thread decodes, the src pad task pushes
    def _launch(self, src: bytes | None, seg: Gst.Segment, seqnum: int) -> None:
        """Decode ``src`` (the file's bytes; None: the parsed file) from ``seg.start`` on."""
        self._queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        threading.Thread(target=self._produce, args=(src, seg, seqnum, self._queue, self._stop),
                         name="ldmzdec", daemon=True).start()
        self.srcpad.start_task(self._push_loop)

    def _produce(self, src: bytes | None, seg: Gst.Segment, seqnum: int, q: queue.Queue,
                 stop: threading.Event) -> None:
        """Decode in this thread; hand (kind, value) items to the push loop."""

        def put(item: tuple) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        try:
            api = import_ldmz()
            from ldmz.codec.params import DecodeParams
            from ldmz.formats import LdmzFile

            if src is not None:
                f = LdmzFile.from_bytes(src, self._name)
                h = f.header
                self._duration = Gst.util_uint64_scale_int(h.source.samples, Gst.SECOND,
                                                           h.source.sample_rate)
                self._file, self._raw = f, src
                if not put(("header", (f, len(src)))):
                    return
            f = self._file
            rate = f.header.source.sample_rate
            target = min(Gst.util_uint64_scale_int(max(seg.start, 0), rate, Gst.SECOND),
                         f.header.source.samples)
            sub, first = _from_chunk(f, self._raw, f.chunk_at(target / rate))
            st = api.decode_stream(sub, DecodeParams(vocoder=self.vocoder, device=self.device),
                                   vocoder_window=PLAY_WINDOW)
            if not put(("format", (st.sample_rate, st.channels, st.vocoder, seg, seqnum,
                                   target))):
                return
            skip = target - first
            for blk in st:
                if skip:
                    blk, skip = blk[skip:], max(0, skip - len(blk))
                if len(blk) and not put(("audio", blk)):
                    return
            put(("eos", seqnum))
        except BaseException as e:  # noqa: BLE001 - every failure becomes a GStreamer error
            put(("error", e))

    def _push_loop(self, *_args: object) -> None:
        try:
            kind, value = self._queue.get(timeout=0.1)
        except queue.Empty:
            if self._stop.is_set():
                self.srcpad.pause_task()
            return
        ret = Gst.FlowReturn.OK
        if kind == "header":
            self._header_tags(*value)
        elif kind == "format":
            self._send_format(*value)
        elif kind == "audio":
            ret = self._push_audio(value)
        elif kind in ("eos", "error"):
            if kind == "error":
                _post_error(self, Gst.stream_error_quark(), int(Gst.StreamError.DECODE), value)
            ev = Gst.Event.new_eos()
            if kind == "eos":
                ev.set_seqnum(value)
            self.srcpad.push_event(ev)
            self.srcpad.pause_task()
        if ret != Gst.FlowReturn.OK:
            self._stop.set()
            self.srcpad.pause_task()
            if ret == Gst.FlowReturn.NOT_LINKED or ret < Gst.FlowReturn.EOS:
                self.message_full(Gst.MessageType.ERROR, Gst.stream_error_quark(),
                                  int(Gst.StreamError.FAILED), "Internal data stream error.",
                                  f"streaming stopped, reason {Gst.flow_get_name(ret)}",
                                  __file__, "ldmzdec", 0)
                self.srcpad.push_event(Gst.Event.new_eos())

    def _header_tags(self, f: Any, size: int) -> None:
        h = f.header
        tl = Gst.TagList.new_empty()
        self._model_id = h.model.id
        tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_CONTAINER_FORMAT, "ldmz")
        if h.writer:
            tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_ENCODER, h.writer)
        if h.source.samples:
            bps = round(size * 8 * h.source.sample_rate / h.source.samples)
            tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_BITRATE,
                         GObject.Value(GObject.TYPE_UINT, min(bps, 2**32 - 1)))
        for key, tag in _TAGS.items():
            if h.tags.get(key):
                tl.add_value(Gst.TagMergeMode.REPLACE, tag, h.tags[key])
        self._tags = tl

    def _send_format(self, rate: int, channels: int, vocoder: str, seg: Gst.Segment,
                     seqnum: int, first: int) -> None:
        caps = (f"audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                f"rate=(int){rate}, channels=(int){channels}")
        if channels > 2:
            caps += ", channel-mask=(bitmask)0x0"  # unpositioned
        self.srcpad.push_event(Gst.Event.new_caps(Gst.Caps.from_string(caps)))
        seg.duration = self._duration
        ev = Gst.Event.new_segment(seg)
        ev.set_seqnum(seqnum)
        self.srcpad.push_event(ev)
        tl = self._tags.copy()
        tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_AUDIO_CODEC,
                     f"ldmz {self._model_id}, {vocoder} vocoder")
        self.srcpad.push_event(Gst.Event.new_tag(tl))
        self._rate, self._offset, self._discont = rate, first, True

    def _push_audio(self, blk: Any) -> Gst.FlowReturn:
        step = max(1, round(self._rate * BUFFER_SECONDS))
        for i in range(0, len(blk), step):
            if self._stop.is_set():
                return Gst.FlowReturn.FLUSHING
            part = blk[i:i + step]
            buf = Gst.Buffer.new_wrapped(part.tobytes())
            start, end = self._offset, self._offset + len(part)
            buf.pts = Gst.util_uint64_scale_int(start, Gst.SECOND, self._rate)
            buf.duration = Gst.util_uint64_scale_int(end, Gst.SECOND, self._rate) - buf.pts
            buf.offset, buf.offset_end = start, end
            if self._discont:
                buf.set_flags(Gst.BufferFlags.DISCONT)
                self._discont = False
            self._offset = end
            ret = self.srcpad.push(buf)
            if ret != Gst.FlowReturn.OK:
                return ret
        return Gst.FlowReturn.OK

    # --- queries and events from downstream
    def _src_query(self, pad: Gst.Pad, parent: Gst.Object, query: Gst.Query) -> bool:
        if query.type == Gst.QueryType.DURATION and self._duration >= 0:
            if query.parse_duration()[0] == Gst.Format.TIME:
                query.set_duration(Gst.Format.TIME, self._duration)
                return True
        if query.type == Gst.QueryType.SEEKING:
            fmt = query.parse_seeking()[0]
            ok = fmt == Gst.Format.TIME and self._file is not None
            query.set_seeking(fmt, ok, 0, self._duration if ok else -1)
            return True
        return pad.query_default(parent, query)

    def _src_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        if event.type == Gst.EventType.SEEK:
            try:
                return self._seek(event)
            except Exception as e:  # a failed seek is refused, never a traceback
                Gst.warning(f"ldmzdec: seek refused: {_one_line(e)}")
                return False
        return pad.event_default(parent, event)

    def _seek(self, event: Gst.Event) -> bool:
        """Flushing TIME seeks at normal rate: decode again from the chunk holding the target."""
        rate, fmt, flags, start_type, start, stop_type, stop = event.parse_seek()
        if (fmt != Gst.Format.TIME or rate != 1.0 or self._file is None
                or not flags & Gst.SeekFlags.FLUSH):
            return False
        seg = Gst.Segment()
        seg.init(Gst.Format.TIME)
        seg.duration = self._duration
        none = Gst.CLOCK_TIME_NONE  # parse_seek gives gint64 -1; do_seek takes guint64
        ok, _ = seg.do_seek(rate, fmt, flags, start_type, none if start < 0 else start,
                            stop_type, none if stop < 0 else stop)
        if not ok:
            return False
        seqnum = event.get_seqnum()
        ev = Gst.Event.new_flush_start()
        ev.set_seqnum(seqnum)
        self.srcpad.push_event(ev)
        self._stop.set()
        self.srcpad.pause_task()  # waits for the running push to return (FLUSHING)
        ev = Gst.Event.new_flush_stop(True)
        ev.set_seqnum(seqnum)
        self.srcpad.push_event(ev)
        self._launch(None, seg, seqnum)
        return True

    # --- state
    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        """Stop the decode thread and the push task when leaving PAUSED."""
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self._stop.set()  # the push loop returns within 0.1 s and the task pauses
        ret = Gst.Element.do_change_state(self, transition)
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self.srcpad.stop_task()
            self._reset()
        return ret


# ----------------------------------------------------------------------------- encoder
class LdmzEnc(Gst.Element):
    """Encode raw F32LE audio to one `.ldmz` file (buffered until EOS)."""

    __gtype_name__ = "GstLdmzEnc"
    __gstmetadata__ = ("ldmz encoder", "Codec/Encoder/Audio",
                       "Encodes raw audio to the .ldmz neural audio codec (VAE latents); "
                       "the whole stream is buffered and encoded at EOS",
                       "The ldmz developers")
    __gsttemplates__ = (
        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(RAW_CAPS)),
        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS,
                            Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int)1")),
    )
    bits = GObject.Property(type=int, default=0, minimum=0, maximum=8, nick="Bits",
                            blurb="quantizer depth of the widest latent channel "
                                  "(0: ldmz's default)")
    model = GObject.Property(type=str, default="ldmz-small", nick="Model",
                             blurb="model name, hub id or folder")
    vocoder = GObject.Property(type=str, default="", nick="Vocoder",
                               blurb="default vocoder recorded in the file; empty: the model's")
    chunk_seconds = GObject.Property(type=float, default=10.0, minimum=0.01, maximum=3599.0,
                                     nick="Chunk seconds", blurb="seconds per latent chunk")
    device = GObject.Property(type=str, default="auto", nick="Device",
                              blurb="torch device: auto, cpu, cuda, ...")

    def __init__(self) -> None:
        super().__init__()
        _add_pads(self)
        self._reset()

    def _reset(self) -> None:
        self._parts: list[bytes] = []
        self._rate = self._channels = 0
        self._tags: dict[str, str] = {}
        self._done = False

    def _chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        if self._done:
            return Gst.FlowReturn.EOS
        self._parts.append(buf.extract_dup(0, buf.get_size()))
        return Gst.FlowReturn.OK

    def _sink_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        t = event.type
        if t == Gst.EventType.CAPS:
            s = event.parse_caps().get_structure(0)
            self._rate = s.get_int("rate")[1]
            self._channels = s.get_int("channels")[1]
            return True
        if t == Gst.EventType.TAG:
            tl = event.parse_tag()
            for key, tag in _TAGS.items():
                ok, value = tl.get_string(tag)
                if ok and value:
                    self._tags[key] = value
            return True
        if t == Gst.EventType.SEGMENT:
            return True
        if t == Gst.EventType.EOS:
            if not self._done:
                self._done = True
                self._finish()
            return True
        if t == Gst.EventType.FLUSH_STOP:
            self._reset()
        return pad.event_default(parent, event)

    def _finish(self) -> None:
        """Encode everything collected, push the file as one buffer, then EOS."""
        try:
            api = import_ldmz()
            import numpy as np

            from ldmz.codec.params import EncodeParams

            if not self._rate or not self._channels:
                raise ValueError("no audio format was negotiated before the end of the stream")
            raw = b"".join(self._parts)
            self._parts = []
            audio = np.frombuffer(raw, "<f4")
            audio = audio[:len(audio) - len(audio) % self._channels]
            audio = audio.reshape(-1, self._channels).T
            if audio.shape[1] == 0:
                raise ValueError("no audio reached the end of the stream")
            params = EncodeParams(model=self.model, bits=self.bits or EncodeParams().bits,
                                  vocoder=self.vocoder, chunk_seconds=self.chunk_seconds,
                                  device=self.device)
            data = api.encode(audio, self._rate, params, tags=self._tags or None).to_bytes()
        except BaseException as e:  # noqa: BLE001 - every failure becomes a GStreamer error
            _post_error(self, Gst.stream_error_quark(), int(Gst.StreamError.ENCODE), e)
            self.srcpad.push_event(Gst.Event.new_eos())
            return
        self.srcpad.push_event(Gst.Event.new_caps(
            Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int)1")))
        seg = Gst.Segment()
        seg.init(Gst.Format.BYTES)
        self.srcpad.push_event(Gst.Event.new_segment(seg))
        buf = Gst.Buffer.new_wrapped(data)
        buf.offset, buf.offset_end = 0, len(data)
        ret = self.srcpad.push(buf)
        if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING, Gst.FlowReturn.EOS):
            self.message_full(Gst.MessageType.ERROR, Gst.stream_error_quark(),
                              int(Gst.StreamError.FAILED), "Internal data stream error.",
                              f"streaming stopped, reason {Gst.flow_get_name(ret)}",
                              __file__, "ldmzenc", 0)
        self.srcpad.push_event(Gst.Event.new_eos())

    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        """Drop collected audio when leaving PAUSED."""
        ret = Gst.Element.do_change_state(self, transition)
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self._reset()
        return ret


# ----------------------------------------------------------------------------- registration
_plugin = getattr(Gst, "__plugin__", None)  # set by the loader; None in an embedding app
Gst.TypeFind.register(_plugin, "ldmz_typefind", Gst.Rank.PRIMARY, typefind, "ldmz",
                      Gst.Caps.from_string(LDMZ_CAPS))
Gst.Element.register(_plugin, "ldmzenc", Gst.Rank.SECONDARY, LdmzEnc.__gtype__)
__gstelementfactory__ = ("ldmzdec", Gst.Rank.PRIMARY, LdmzDec)
