"""What every benchmark in bench/ shares: readings from /proc, percentiles, a free port,
and writing its own section of BENCHMARKS.md. Imported by the scripts as ``benchlib``
(each runs as ``python bench/NAME.py``, so this folder is on the path)."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def proc_cpu(pid: int) -> float | None:
    """CPU seconds used so far by process ``pid`` (all threads), from /proc; None if n/a."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float | None:
    """CPU seconds all CPUs have spent busy since boot, from /proc/stat; None if n/a."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest is in user


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of values sorted ascending; NaN for no values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``); None if n/a."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@contextlib.contextmanager
def rss_peak() -> Iterator[dict[str, Any]]:
    """RSS before the block and its peak during it (KiB), in ``out``."""
    out: dict[str, Any] = {}
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        method = "VmHWM"
    except OSError:
        method = "sampled VmRSS"
    before = status_kib("VmRSS")
    out["before"], out["method"] = before, method
    stop = threading.Event()
    peak = [before or 0]

    def sample() -> None:
        while not stop.wait(0.001):
            peak[0] = max(peak[0], status_kib("VmRSS") or 0)

    sampler = threading.Thread(target=sample, daemon=True) if method != "VmHWM" else None
    if sampler:
        sampler.start()
    try:
        yield out
    finally:
        stop.set()
        if sampler:
            sampler.join()
        out["peak"] = status_kib("VmHWM") if method == "VmHWM" else peak[0]


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section of ``path`` under ``heading`` (up to the next ``## ``), or add
    it at the end."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
