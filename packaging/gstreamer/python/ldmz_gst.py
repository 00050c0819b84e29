"""GStreamer plug-in for `.ldmz`: a typefinder, ``ldmzdec`` (decoder) and ``ldmzenc`` (encoder)."""

# Loaded by GStreamer's Python plug-in loader (gstreamer1.0-python3-plugin-loader) from any
# ``<dir>/python/`` where ``<dir>`` is in GST_PLUGIN_PATH. Importing this module must stay cheap
# (every registry scan does it): ldmz, numpy and torch are imported only when a stream starts.
# See packaging/gstreamer/README.md.

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
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
KNOWN_MAJORS = (1, 2)  # format versions ldmz reads (formats.container.MAJORS; no import here)
RAW_CAPS = ("audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
            "rate=(int)[1, 1000000], channels=(int)[1, 64]")
VENV_ENV = "LDMZ_VENV"  # a virtual environment with ldmz installed (its site-packages is used)
VENV_FILE = Path(__file__).with_name("ldmz_gst.venv")  # one line: the same, written at install
BUFFER_SECONDS = 0.1  # decoded audio is pushed in buffers of this length
PLAY_WINDOW = 256  # mel frames per vocoder call (~3 s): first audio soon; output unchanged
FIRST_WINDOW = 32  # the first vocoder calls: 32, 64, 128 frames, then PLAY_WINDOW (same output)
MAX_INPUT_BYTES = 1 << 30  # ldmzdec's default max-bytes (about 10 h of stereo at 200 kbps)
MAX_HEADER_PREFIX = 16 + 16 * 1024 * 1024  # preamble + the format's header limit
JOIN_SECONDS = 120.0  # how long a state change waits for the decoder thread to stop
LATE_MARGIN = 100 * 1000 * 1000  # ns of slack when the first audio arrives after its time


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


def _import(module: str) -> Any:
    """Import and return ``module`` (of ldmz), adding the venv ldmz lives in to sys.path first."""
    with _import_lock:
        if module in sys.modules:
            return sys.modules[module]
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
            return importlib.import_module(module)
        except ImportError as e:
            why = "; ".join(tried) or "no venv found"
            raise SetupError(
                f"cannot import ldmz in GStreamer's Python {sys.version.split()[0]} ({e}; "
                f"{why}): set {VENV_ENV} to the venv ldmz is installed in") from e


def import_ldmz() -> Any:
    """``ldmz.codec.api`` (torch and the model load later, when a decode starts)."""
    return _import("ldmz.codec.api")


def import_formats() -> Any:
    """``ldmz.formats`` (numpy, msgpack and zstandard only: cheap, for headers)."""
    return _import("ldmz.formats")


# ----------------------------------------------------------------------------- helpers
def _printable(text: str) -> str:
    """``text`` with control characters escaped (a file must not drive the terminal)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _one_line(e: BaseException) -> str:
    text = _printable(" ".join(str(e).split())) or type(e).__name__
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
    except Exception:  # noqa: BLE001 - a typefinder must never break other formats' detection
        return
    if head and head[:4] == b"LDMZ":
        sure = head[4] in KNOWN_MAJORS and head[6:8] == b"\0\0"  # a known major, flags 0
        prob = Gst.TypeFindProbability.MAXIMUM if sure else Gst.TypeFindProbability.LIKELY
        find.suggest(prob, Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int){head[4]}"))


# ----------------------------------------------------------------------------- decoder
def _from_chunk(f: Any, raw: bytes, k: int) -> tuple[Any, int]:
    """Chunks ``k..`` of ``f`` as a file and the source sample it starts at (LdmzFile.tail)."""
    return f.tail(k)


class LdmzDec(Gst.Element):
    """Decode a `.ldmz` stream to F32LE interleaved audio at the file's rate and channels.

    The header alone answers discovery: as soon as it has arrived, caps, duration, tags and a
    GAP event go downstream, so a PAUSED pipeline (gst-discoverer) prerolls without decoding.
    Decoding starts when the element goes to PLAYING; if the first audio is late by then (the
    model loads once per process), the segment is moved so that nothing is clipped.
    """

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
                               blurb="hifigan, universal, griffinlim or ldmzvoc; "
                                     "empty: the file's own")
    device = GObject.Property(type=str, default="auto", nick="Device",
                              blurb="torch device: auto, cpu, cuda, ...")
    max_bytes = GObject.Property(type=GObject.TYPE_UINT64, default=MAX_INPUT_BYTES,
                                 minimum=1024, maximum=2**40, nick="Max bytes",
                                 blurb="refuse files whose header declares more bytes than this")

    def __init__(self) -> None:
        super().__init__()
        _add_pads(self)
        self.srcpad.set_query_function_full(self._src_query)
        self.srcpad.set_event_function_full(self._src_event)
        self._lock = threading.RLock()
        self._playing = False
        self._thread: threading.Thread | None = None
        self._reset()

    def _reset(self) -> None:
        self._data = bytearray()
        self._name = "<ldmz stream>"
        self._header: Any = None
        self._total = 0  # bytes the header declares for the whole file
        self._failed = False
        self._file: Any = None  # the parsed, verified LdmzFile, once every byte has arrived
        self._raw = b""
        self._duration = -1  # ns, once the header is known
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._segment: Any = None  # where the next decode starts (a TIME segment)
        self._seqnum = 0
        self._launched = False
        self._offset = 0  # next output sample
        self._rate = 0
        self._discont = True
        self._late_checked = False
        self._tags = Gst.TagList.new_empty()

    # --- input: the header first, then the rest, never more than the header declares
    def _chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        if self._failed:
            return Gst.FlowReturn.ERROR
        if self._file is not None:
            return Gst.FlowReturn.EOS  # trailing bytes are not ours
        want = self._total or MAX_HEADER_PREFIX
        self._data += buf.extract_dup(0, min(buf.get_size(), want - len(self._data)))
        try:
            if self._header is None and not self._read_header():
                return Gst.FlowReturn.OK
            if len(self._data) >= self._total:
                self._complete()
                return Gst.FlowReturn.EOS
        except Exception as e:  # noqa: BLE001 - every failure becomes one GStreamer error
            self._fail(e)
            return Gst.FlowReturn.ERROR
        return Gst.FlowReturn.OK

    def _read_header(self) -> bool:
        """Parse the header once it is complete; False while more bytes are needed."""
        from_formats = import_formats()
        if self._name == "<ldmz stream>":
            self._name = _upstream_name(self.sinkpad)
        end = from_formats.header_end(bytes(self._data[:16]), self._name)
        if end is None or len(self._data) < end:
            return False
        h, start = from_formats.read_header(bytes(self._data[:end]), self._name)
        total = start + h.data_size
        if total > self.max_bytes:
            raise SetupError(f"{self._name}: its header declares {total} bytes, over ldmzdec's "
                             f"max-bytes ({self.max_bytes}); raise max-bytes to play it")
        self._header, self._total = h, total
        self._duration = Gst.util_uint64_scale_int(h.source.samples, Gst.SECOND,
                                                   h.source.sample_rate)
        seg = Gst.Segment()
        seg.init(Gst.Format.TIME)
        seg.duration = self._duration
        self._segment, self._seqnum = seg, Gst.util_seqnum_next()
        self._header_tags(h, total)
        self._rate = h.source.sample_rate
        self._start_output(seg, self._seqnum)
        return True

    def _complete(self) -> None:
        """Every byte has arrived: verify the whole file, then decode when PLAYING."""
        from_formats = import_formats()
        self._raw = bytes(self._data[:self._total])
        self._data = bytearray()
        self._file = from_formats.LdmzFile.from_bytes(self._raw, self._name)
        self._maybe_launch()

    def _fail(self, e: BaseException) -> None:
        """Post ``e`` now (before upstream reports our ERROR flow), then end the stream."""
        self._failed = True
        self._data = bytearray()
        _post_error(self, Gst.stream_error_quark(), int(Gst.StreamError.DECODE), e)
        if self._segment is not None:  # after the header's events, from the streaming task
            self._queue.put(("end", None))

    def _sink_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        t = event.type
        if t == Gst.EventType.EOS:
            if self._file is None and not self._failed:
                try:  # the formats layer names what is missing (magic, truncation, ...)
                    import_formats().LdmzFile.from_bytes(bytes(self._data), self._name)
                    raise SetupError(f"{self._name}: the stream ended early")
                except Exception as e:  # noqa: BLE001
                    self._fail(e)
            return True
        if t in (Gst.EventType.CAPS, Gst.EventType.SEGMENT, Gst.EventType.TAG):
            return True  # ours are sent from the header
        if t == Gst.EventType.FLUSH_STOP:
            self._halt()
            self._reset()
        return pad.event_default(parent, event)

    def _start_output(self, seg: Gst.Segment, seqnum: int) -> None:
        """Start the src pad task with caps, ``seg``, tags and a GAP at ``seg.start``.

        The GAP prerolls sinks (PAUSED completes) without any decoding. Everything goes out from
        the task: a prerolled sink blocks the thread that pushes to it.
        """
        caps = (f"audio/x-raw, format=(string)F32LE, layout=(string)interleaved, "
                f"rate=(int){self._rate}, channels=(int){self._header.source.channels}")
        if self._header.source.channels > 2:
            caps += ", channel-mask=(bitmask)0x0"  # unpositioned
        ev_seg = Gst.Event.new_segment(seg)
        ev_seg.set_seqnum(seqnum)
        events = [Gst.Event.new_caps(Gst.Caps.from_string(caps)), ev_seg,
                  Gst.Event.new_tag(self._tags.copy()),
                  Gst.Event.new_gap(max(seg.start, 0), 0)]
        self._queue = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._queue.put(("events", events))
        self.srcpad.start_task(self._push_loop)

    # --- output: a producer thread decodes, the src pad task pushes
    def _maybe_launch(self) -> None:
        with self._lock:
            if self._playing and self._file is not None and not self._launched \
                    and not self._failed:
                self._launched = True
                self._launch(self._segment, self._seqnum)

    def _launch(self, seg: Gst.Segment, seqnum: int) -> None:
        """Decode the parsed file from ``seg.start`` on, into the running task's queue."""
        self._late_checked = False
        self._thread = threading.Thread(target=self._produce,
                                        args=(seg, seqnum, self._queue, self._stop),
                                        name="ldmzdec", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        """Stop the producer and wait for it (a thread left running crashes the exit)."""
        self._stop.set()
        th, self._thread = self._thread, None
        if th is not None and th is not threading.current_thread():
            th.join(JOIN_SECONDS)

    def _produce(self, seg: Gst.Segment, seqnum: int, q: queue.Queue,
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

            f = self._file
            rate = f.header.source.sample_rate
            target = min(Gst.util_uint64_scale_int(max(seg.start, 0), rate, Gst.SECOND),
                         f.header.source.samples)
            sub, first = _from_chunk(f, self._raw, f.chunk_at(target / rate))
            st = api.decode_stream(sub, DecodeParams(vocoder=self.vocoder, device=self.device),
                                   vocoder_window=PLAY_WINDOW, first_window=FIRST_WINDOW)
            if not put(("format", (st.vocoder, target))):
                return
            skip = target - first
            for blk in st:
                if stop.is_set():
                    return
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
        if kind == "events":
            for ev in value:
                self.srcpad.push_event(ev)
        elif kind == "format":
            self._vocoder_tag(*value)
        elif kind == "audio":
            ret = self._push_audio(value)
        elif kind in ("eos", "error", "end"):
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

    def _header_tags(self, h: Any, size: int) -> None:
        tl = Gst.TagList.new_empty()
        tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_CONTAINER_FORMAT, "ldmz")
        tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_AUDIO_CODEC, f"ldmz {h.model.id}")
        if h.writer:
            tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_ENCODER, h.writer)
        if h.source.samples:
            bps = round(h.bitrate_kbps(size) * 1000)
            tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_BITRATE,
                         GObject.Value(GObject.TYPE_UINT, min(bps, 2**32 - 1)))
        for key, tag in _TAGS.items():
            if h.tags.get(key):
                tl.add_value(Gst.TagMergeMode.REPLACE, tag, _printable(h.tags[key]))
        self._tags = tl

    def _push_segment(self, seg: Gst.Segment, seqnum: int) -> None:
        ev = Gst.Event.new_segment(seg)
        ev.set_seqnum(seqnum)
        self.srcpad.push_event(ev)

    def _vocoder_tag(self, vocoder: str, first: int) -> None:
        tl = self._tags.copy()
        tl.add_value(Gst.TagMergeMode.REPLACE, Gst.TAG_AUDIO_CODEC,
                     f"ldmz {self._header.model.id}, {vocoder} vocoder")
        self.srcpad.push_event(Gst.Event.new_tag(tl))
        self._offset, self._discont = first, True

    def _catch_up(self, pts: int) -> None:
        """If the clock already passed the first buffer's running time (the model was
        loading), move the segment so that the audio starts now instead of being clipped."""
        self._late_checked = True
        clock = self.get_clock()
        seg = self._segment
        if clock is None or seg is None or not self._playing:
            return
        now = clock.get_time() - self.get_base_time()
        due = seg.to_running_time(Gst.Format.TIME, pts)
        if due != Gst.CLOCK_TIME_NONE and now + LATE_MARGIN > due:
            seg.base += now + LATE_MARGIN - due
            self._push_segment(seg, self._seqnum)

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
            if not self._late_checked:
                self._catch_up(buf.pts)
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
            ok = fmt == Gst.Format.TIME and self._header is not None
            query.set_seeking(fmt, ok, 0, self._duration if ok else -1)
            return True
        return pad.query_default(parent, query)

    def _src_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        if event.type == Gst.EventType.SEEK:
            try:
                return self._seek(event)
            except Exception as e:  # noqa: BLE001 - a failed seek is refused, never a traceback
                Gst.warning(f"ldmzdec: seek refused: {_one_line(e)}")
                return False
        return pad.event_default(parent, event)

    def _seek(self, event: Gst.Event) -> bool:
        """Flushing TIME seeks at normal rate: decode again from the chunk holding the target."""
        rate, fmt, flags, start_type, start, stop_type, stop = event.parse_seek()
        if (fmt != Gst.Format.TIME or rate != 1.0 or self._header is None or self._failed
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
        self._halt()
        self.srcpad.pause_task()  # waits for the running push to return (FLUSHING)
        ev = Gst.Event.new_flush_stop(True)
        ev.set_seqnum(seqnum)
        self.srcpad.push_event(ev)
        with self._lock:
            self._segment, self._seqnum, self._launched = seg, seqnum, False
            self._start_output(seg, seqnum)  # PAUSED prerolls on its GAP
        self._maybe_launch()
        return True

    # --- state
    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        """Decode from PAUSED_TO_PLAYING on; stop and join the decoder when leaving PAUSED."""
        if transition == Gst.StateChange.PAUSED_TO_READY:
            self._halt()  # the push loop returns within 0.1 s and the task pauses
        if transition == Gst.StateChange.PLAYING_TO_PAUSED:
            self._playing = False
        ret = Gst.Element.do_change_state(self, transition)
        if transition == Gst.StateChange.PAUSED_TO_PLAYING:
            self._playing = True
            self._maybe_launch()
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
                            Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int)[1, 2]")),
    )
    bits = GObject.Property(type=int, default=0, minimum=0, maximum=8, nick="Bits",
                            blurb="quantizer depth of the widest latent channel "
                                  "(0: ldmz's default)")
    model = GObject.Property(type=str, default="", nick="Model",
                             blurb="model name, hub id or folder; empty: the coding's default "
                                   "(as ldmz encode)")
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
                                  coding="affine" if self.bits else "auto",  # as ldmz encode
                                  vocoder=self.vocoder, chunk_seconds=self.chunk_seconds,
                                  device=self.device)
            data = api.encode(audio, self._rate, params, tags=self._tags or None).to_bytes()
        except BaseException as e:  # noqa: BLE001 - every failure becomes a GStreamer error
            _post_error(self, Gst.stream_error_quark(), int(Gst.StreamError.ENCODE), e)
            self.srcpad.push_event(Gst.Event.new_eos())
            return
        self.srcpad.push_event(Gst.Event.new_caps(
            Gst.Caps.from_string(f"{LDMZ_CAPS}, version=(int){data[4]}")))
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
