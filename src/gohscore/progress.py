"""Logging set-up and progress lines for long steps (readable in Snakemake log files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("gohscore")


def setup_logging(verbose: bool = False) -> None:
    """Send gohscore's log records to stderr with a timestamp (idempotent)."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def progress(items: Iterable[T], label: str, total: int | None = None, every_s: float = 5.0) -> Iterator[T]:
    """Yield ``items`` and log "label: i/total (rate, eta)" at most every ``every_s`` seconds and at the end."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    start = last = time.perf_counter()
    i = 0
    for i, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s or (total is not None and i == total):
            last = now
            rate = i / max(now - start, 1e-9)
            if total:
                eta = (total - i) / rate if rate > 0 else float("nan")
                log.info("%s: %d/%d (%.2f/s, %.0f s left)", label, i, total, rate, eta)
            else:
                log.info("%s: %d (%.2f/s)", label, i, rate)
    if i == 0:
        log.info("%s: nothing to do", label)
