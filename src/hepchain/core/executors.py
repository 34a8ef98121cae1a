"""Map independent jobs (e.g. dataset shards) over local processes or a Dask cluster.

::

    with make_executor(workers=4) as ex:                       # local process pool
        for result in ex.map(make_shard, tasks): ...
    with make_executor(scheduler="tcp://10.0.0.5:8786") as ex:  # dask.distributed
        ...

``fn`` must be a module-level function (it is pickled). Results arrive as jobs finish, so
callers must not rely on order. With a Dask cluster, output paths must be on a filesystem the
workers share with the client.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from hepchain.core.errors import HepchainError, UsageError
from hepchain.core.malloc import keep_freed_memory


class Executor(Protocol):
    """What the data producers need: map a function over items, results as completed."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...

    @property
    def n_workers(self) -> int: ...


def _exit_on_interrupt(signum: int, frame: object) -> None:
    raise SystemExit(130)


def _start_worker() -> None:
    """Start of a pool worker: keep freed memory, and make Ctrl-C end it quietly (Python's
    default prints a traceback in every worker; the parent reports the interrupt once). A
    worker of a process that ignores SIGINT (started with ``&`` from a script) ignores it too.
    SIGUSR1, which only :meth:`LocalExecutor._interrupt_workers` sends, ends the running job
    the same way in every worker, whether SIGINT is ignored or not."""
    keep_freed_memory()
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _exit_on_interrupt)
    signal.signal(signal.SIGUSR1, _exit_on_interrupt)


def _worker_died() -> HepchainError:
    """The one sentence for a pool whose worker process died."""
    return HepchainError("A worker process ended abruptly: killed, out of memory or "
                         "interrupted (run the same command again to resume), or a script "
                         "that starts workers outside `if __name__ == \"__main__\":` (see "
                         "the worker's message above).")


def _relay(source: Future, target: Future) -> None:
    """Hand a finished pool future's value or error to ``target``, a dead worker as
    :func:`_worker_died`'s sentence."""
    if source.cancelled():
        target.cancel()
        return
    exc = source.exception()
    if isinstance(exc, BrokenProcessPool):
        target.set_exception(_worker_died())
    elif exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)`` in a worker; on Ctrl-C, once ``fn``'s ``finally`` blocks have run (a
    half-written :func:`~hepchain.core.io.atomic_path` file is removed), the worker exits
    instead of taking the next queued job."""
    try:
        return fn(item)
    except SystemExit:
        os._exit(130)


class LocalExecutor:
    """In-process for ``workers == 1``, otherwise a spawn-based process pool whose workers
    start with :func:`~hepchain.core.malloc.keep_freed_memory`. Ctrl-C stops the workers
    without a traceback and reaches the caller as one ``KeyboardInterrupt``."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}.")
        self._workers = workers
        self._pool = (ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                          initializer=_start_worker)
                      if workers > 1 else None)

    @property
    def n_workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        if self._pool is None:
            for item in items:
                yield fn(item)
            return
        futures = [self._pool.submit(_call, fn, item) for item in items]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BrokenProcessPool:
            raise _worker_died() from None
        finally:
            for fut in futures:
                fut.cancel()

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Future:
        """``fn(item)`` as a future: in a worker process, so the caller can work beside it,
        or at once in this process for ``workers == 1`` (its error is raised by
        ``result()``)."""
        done: Future = Future()
        if self._pool is not None:
            self._pool.submit(_call, fn, item).add_done_callback(lambda f: _relay(f, done))
            return done
        try:
            done.set_result(fn(item))
        except Exception as exc:  # handed to the caller by result()
            done.set_exception(exc)
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self._interrupt_workers()  # Ctrl-C has reached them already
        self.close()

    def _interrupt_workers(self) -> None:
        """Stop running jobs as Ctrl-C would (their ``finally`` blocks run), so an error
        raised beside them is reported without waiting for them to finish. The signal is
        SIGUSR1, not SIGINT, which a worker ignores when this process was started in the
        background by a script."""
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            if process.is_alive():
                os.kill(process.pid, signal.SIGUSR1)


class DaskExecutor:
    """Jobs on a running ``dask.distributed`` scheduler (``tcp://host:port``) or a Client."""

    def __init__(self, scheduler: Any) -> None:
        from distributed import Client

        if isinstance(scheduler, Client):
            self._client, self._owns = scheduler, False
        else:
            try:
                self._client, self._owns = Client(scheduler, timeout="10s"), True
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(
                    f"Cannot reach the Dask scheduler at {scheduler} ({exc}); check that address "
                    "(--scheduler, or a data.scheduler setting)."
                ) from exc

    @property
    def n_workers(self) -> int:
        return max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed as dask_completed

        futures = self._client.map(fn, list(items), pure=False)
        try:
            for fut in dask_completed(futures):
                yield fut.result()
        finally:
            self._client.cancel(futures)

    def close(self) -> None:
        if self._owns:
            self._client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(workers: int = 1, scheduler: Any = None) -> LocalExecutor | DaskExecutor:
    """A Dask executor when ``scheduler`` is given, else a local one with ``workers``."""
    return DaskExecutor(scheduler) if scheduler else LocalExecutor(workers)
