"""How long the emulator takes to answer: a remote SaaS API, not a process on loopback.

A base service time per request plus a cost per row served, each scaled by a uniform jitter
of +-`jitter` (a fraction). Off by default, so tests that are not about timing stay fast; the
benchmark and the scheduling tests turn it on. The jitter has its own random stream, so turning
latency on leaves the fault sequence of `fault_seed` unchanged.
"""

from __future__ import annotations

import random
import threading
import time


class Latency:
    """Draws and serves the emulated service time of each answer."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 - timing noise, not secrets

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)  # noqa: S311

    def scaled(self, seconds: float, jitter: float) -> float:
        """`seconds` times a factor drawn uniformly from [1 - jitter, 1 + jitter]."""
        if seconds <= 0:
            return 0.0
        if jitter <= 0:
            return seconds
        with self._lock:
            roll = self._rng.random()
        return seconds * (1 + jitter * (2 * roll - 1))

    def wait(self, seconds: float, jitter: float) -> float:
        """Sleep the jittered `seconds`; returns the seconds slept."""
        slept = self.scaled(seconds, jitter)
        if slept > 0:
            time.sleep(slept)
        return slept
