"""Run codec work in a QThread: a Worker emits progress, finished and failed; a Task owns it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ldmz.formats import LdmzError

Report = Callable[[int, int, str], None]
Job = Callable[[Report], Any]


class Cancelled(Exception):
    """Raised inside a job, at its next progress report, after cancel()."""


def describe_error(exc: BaseException) -> str:
    """One clear sentence for a failure: the codec's message, or the exception's type and text."""
    if isinstance(exc, (LdmzError, OSError, ValueError)):
        text = str(exc) or type(exc).__name__
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


class Worker(QObject):
    """Runs ``job(report)`` in its thread; ``report(done, total, stage)`` emits progress."""

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report (thread-safe)."""
        self._cancel.set()

    def _report(self, done: int, total: int, stage: str = "") -> None:
        if self._cancel.is_set():
            raise Cancelled
        self.progress.emit(int(done), int(total), stage)

    @Slot()
    def run(self) -> None:
        """Run the job and emit exactly one of finished, failed or cancelled."""
        try:
            self._report(0, 0, "")
            result = self._job(self._report)
            if self._cancel.is_set():
                raise Cancelled
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dialog, never a crash
            if not isinstance(exc, (LdmzError, OSError, ValueError)):
                from ldmz.gui.crash import write_log

                write_log(type(exc), exc, exc.__traceback__)
            self.failed.emit(describe_error(exc))
        else:
            self.finished.emit(result)


class Task(QObject):
    """One job on its own QThread; re-emits the worker's signals in the GUI thread.

    After cancel() none of progress/finished/failed is emitted any more; ``done`` is emitted
    once the thread has ended, whatever the outcome.
    """

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, job: Job, name: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._cancelled = False
        self._thread = QThread()
        self._worker = Worker(job)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._thread.quit)
        self._thread.finished.connect(self._on_thread_done)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def cancel(self) -> None:
        """Cancel: the job stops at its next progress report and its result is dropped."""
        self._cancelled = True
        self._worker.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._cancelled

    def running(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.isRunning()

    def wait(self, ms: int = -1) -> bool:
        """Block until the thread ends (or ``ms`` pass); True if it ended."""
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, stage: str) -> None:
        if not self._cancelled:
            self.progress.emit(done, total, stage)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self._thread.quit()
        if not self._cancelled:
            self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._thread.quit()
        if not self._cancelled:
            self.failed.emit(message)

    @Slot()
    def _on_thread_done(self) -> None:
        self._thread.wait()  # finished is emitted just before the thread really ends
        self.done.emit()

    def shutdown(self) -> None:
        """Cancel and block until the thread has ended (used when the window closes)."""
        self.cancel()
        self._thread.quit()
        self._thread.wait()


class TaskPool(QObject):
    """Named task slots: starting a task in a busy slot cancels the one there."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current: dict[str, Task] = {}
        self._alive: set[Task] = set()  # cancelled tasks stay referenced until their thread ends
        self._closed = False

    def start(self, name: str, job: Job, finished: Callable[[Any], None],
              failed: Callable[[str], None],
              progress: Callable[[int, int, str], None] | None = None) -> Task | None:
        """Run ``job`` in slot ``name``; the callbacks run in the GUI thread.

        After shutdown() nothing starts any more (None is returned).
        """
        if self._closed:
            return None
        self.cancel(name)
        task = Task(job, name, self)
        task.finished.connect(finished)
        task.failed.connect(failed)
        if progress is not None:
            task.progress.connect(progress)
        task.done.connect(lambda: self._reap(task))
        self._current[name] = task
        self._alive.add(task)
        task.start()
        self.busy_changed.emit(True)
        return task

    def cancel(self, name: str) -> None:
        """Cancel the task in slot ``name``, if any."""
        task = self._current.pop(name, None)
        if task is not None:
            task.cancel()
            self.busy_changed.emit(self.busy())

    def busy(self, name: str | None = None) -> bool:
        """Whether a (not cancelled) task runs in slot ``name``, or in any slot."""
        if name is not None:
            return name in self._current
        return bool(self._current)

    def shutdown(self) -> None:
        """Cancel everything, wait for every thread to end, and start nothing after this."""
        self._closed = True
        self._current.clear()
        for task in list(self._alive):
            task.shutdown()
        self._alive.clear()

    def _reap(self, task: Task) -> None:
        self._alive.discard(task)
        if self._current.get(task.name) is task:
            del self._current[task.name]
            self.busy_changed.emit(self.busy())
        task.deleteLater()
