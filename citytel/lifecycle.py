"""Running until a stop signal, and watching parts: the supervisor's two mechanisms.

``run`` runs a main coroutine; SIGTERM (how systemd, Docker and Kubernetes stop a
service) and SIGINT (Ctrl-C) cancel it, so that its context managers stop its parts in
the reverse order they were started. ``supervise`` watches the running parts in one
``asyncio.TaskGroup`` and raises when one of them stops by itself.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from devices.errors import CitytelError

log = logging.getLogger("citytel")

Watch = Callable[[], Awaitable[None]]
"""Returns (or raises) only when its part has stopped by itself."""


class PartStopped(CitytelError):
    """A part of the service ended although nobody asked it to."""


def run(main: Coroutine[Any, Any, None], *, stop_timeout_s: float) -> int:
    """Run ``main`` until it ends or SIGTERM/SIGINT stops it; the exit code.

    0 when it ended or a signal stopped it cleanly; 1 when it failed (the cause is logged)
    or its stop was abandoned (a second signal, or ``stop_timeout_s`` passed).
    """
    return asyncio.run(_until_signalled(main, stop_timeout_s))


def _stop_signals() -> list[signal.Signals]:
    # A shell starts background jobs with SIGINT ignored: keep ignoring it there (SIGTERM
    # still stops us), as programs are expected to.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    return [signal.SIGTERM] if ignored else [signal.SIGTERM, signal.SIGINT]


async def _until_signalled(main: Coroutine[Any, Any, None], stop_timeout_s: float) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[signal.Signals] = []
    timers: list[asyncio.TimerHandle] = []
    abandoned: list[str] = []

    def abandon(why: str) -> None:
        log.error("%s: abandoning what is still stopping", why)
        abandoned.append(why)
        task.cancel()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) > 1:
            abandon(f"{sig.name} again")
            return
        log.info("%s received: stopping (within %g s)", sig.name, stop_timeout_s)
        why = f"not stopped within {stop_timeout_s:g} s"
        timers.append(loop.call_later(stop_timeout_s, abandon, why))
        task.cancel()

    signals = _stop_signals()
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await main
    except asyncio.CancelledError:
        if not received:
            raise
    except CitytelError as exc:
        log.error("%s", exc)
        return 1
    except BaseExceptionGroup as group:
        failures, bugs = group.split(CitytelError)
        if bugs is not None or failures is None:
            raise
        for leaf in _leaves(failures):
            log.error("%s", leaf)
        return 1
    finally:
        for timer in timers:
            timer.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
    if received:
        task.uncancel()
    if abandoned:
        return 1
    if received:
        log.info("stopped")
    return 0


def _leaves(group: BaseExceptionGroup[Any]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def supervise(watches: dict[str, Watch]) -> None:
    """Until one of the parts stops by itself: then raise why (a ``CitytelError``)."""

    async def watch(name: str, part: Watch) -> None:
        try:
            await part()
        except CitytelError:
            raise
        except Exception as exc:
            log.error("%s failed", name, exc_info=exc)  # a bug: the traceback helps
            raise PartStopped(f"{name} failed: {exc!r}") from exc
        raise PartStopped(f"{name} stopped by itself")

    async with asyncio.TaskGroup() as group:
        for name, part in watches.items():
            group.create_task(watch(name, part), name=f"citytel-watch-{name}")
