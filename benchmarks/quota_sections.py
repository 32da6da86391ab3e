"""The quota-bound sections (remote64, remote256, loopback64, admin): the cases in
`QUOTA_CASES` (`QuotaCase`: holders, their limit a minute, page size, the emulator's latency and
each case's target) and `quota_section`, which runs the tap once against an emulator enforcing
the same limits, compares its wall time with the minimum the per-holder quotas allow, counts 429s
and adds the case's line to the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emulator_harness import (
    DATA_END,
    DATA_START,
    BenchError,
    Emulator,
    progress,
    read_output,
    run_child,
    tap_command,
    write_config,
)
from report_format import SUMMARY, verdict

QUOTA_DATA_END = "2024-05-03T00:00:00Z"
QUOTA_RUN_TIMEOUT = 900.0
QUOTA_TARGET = 1.2  # unless a case sets its own


@dataclass(frozen=True)
class QuotaCase:
    """One quota-bound run: how many holders, their limit, and how the API answers."""

    title: str
    apps: int
    per_minute: int
    page: int
    sessions_per_app: int
    latency: float = 0.0  # seconds a request (base plus rows), 0 on loopback
    scope: str = "bot"
    target: float = QUOTA_TARGET

    @property
    def label(self) -> str:
        """Short name of the case for the summary lines."""
        where = f"{self.latency * 1000:.0f} ms" if self.latency else "loopback"
        holders = "admin scope, 1 holder" if self.scope == "admin" else f"{self.apps} apps"
        return f"{holders}, {self.per_minute}/min, {where}"


# A remote SaaS API: about 300 ms a request (280 ms plus 1 ms a row of a 20-row page), +-20%.
REMOTE_LATENCY = 0.3
LATENCY_PER_ROW = 0.001
LATENCY_JITTER = 0.2

# Each holder needs a bit more than one minute of its quota, so the quotas bind: at 60 a minute
# about 70 requests (20-row pages of 1,300 sessions over 5 windows), at 120 about 135.
QUOTA_CASES = {
    "remote64": QuotaCase(
        "64 apps at 60/min, ~300 ms a request", 64, 60, 20, 1300, REMOTE_LATENCY, target=1.1
    ),
    "remote256": QuotaCase(
        "256 apps at 60/min, ~300 ms a request", 256, 60, 20, 1300, REMOTE_LATENCY, target=1.15
    ),
    "loopback64": QuotaCase("64 apps at 120/min, loopback", 64, 120, 10, 1300, target=1.1),
    "admin": QuotaCase(
        "admin scope (one holder, 4 apps) at 60/min, ~300 ms a request",
        4,
        60,
        20,
        330,
        REMOTE_LATENCY,
        scope="admin",
    ),
}


def quota_section(workdir: Path, secret: str, quick: bool, case: QuotaCase) -> None:
    per_app = max(case.sessions_per_app // 4, 50) if quick else case.sessions_per_app
    sessions = case.apps * per_app
    print(
        f"\n== Quota-bound, {case.title}: {sessions:,} sessions, pages of {case.page} rows, "
        f"api_scope {case.scope}, {case.per_minute} requests/min per quota holder (emulator "
        "and tap, 1,800/hour in the tap), every other setting at its default"
    )
    latency = {}
    if case.latency:
        latency = {
            "latency_seconds": case.latency - case.page * LATENCY_PER_ROW,
            "latency_per_row_seconds": LATENCY_PER_ROW,
            "latency_jitter": LATENCY_JITTER,
        }
        print(
            f"  emulator latency: {latency['latency_seconds'] * 1000:.0f} ms + "
            f"{LATENCY_PER_ROW * 1000:.0f} ms a row, +-{LATENCY_JITTER:.0%}"
        )
    with Emulator(
        workdir,
        secret,
        sessions=sessions,
        apps=case.apps,
        max_page_size=case.page,
        rate_per_minute=case.per_minute,
        rate_per_hour=1800,
        start=DATA_START,
        end=DATA_END,
        seed=2,
        **latency,
    ) as emu:
        config = write_config(
            workdir,
            "quota",
            emu.tap_config(
                api_scope=case.scope,
                page_size=case.page,
                requests_per_minute=case.per_minute,
                # Past the data's end, so sessions that end after it count too: every session
                # the emulator holds is expected.
                end_date=QUOTA_DATA_END,
            ),
        )
        out, err = workdir / "quota.jsonl", workdir / "quota.stderr"
        emu.reset_stats()
        progress(f"tap run (quota-bound; expect about a minute, timeout {QUOTA_RUN_TIMEOUT:.0f} s)")
        emulator_cpu = emu.cpu_seconds()
        result = run_child(tap_command(config), out, err, QUOTA_RUN_TIMEOUT)
        emulator_cpu = emu.cpu_seconds() - emulator_cpu
        stats = emu.stats()
        arrivals = emu.arrivals()
        records = read_output(out).records
        expected = emu.info["visible_sessions"]
        out.unlink()
    by_holder: dict[str, int] = stats["by_holder"]
    # In admin scope with bot_ids, each app's one Get Linked Apps call is app scope.
    bot_ids = emu.info["bot_ids"]
    holders = ["account", *bot_ids] if case.scope == "admin" else bot_ids
    if sorted(by_holder) != sorted(holders):
        raise BenchError(f"unexpected quota holders in the emulator's stats: {by_holder}")
    # Quotas are independent per holder: the slowest bounds the run. Its R-th request may go
    # out once floor((R-1)/N) full minutes of quota have passed.
    minimum = max((r - 1) // case.per_minute * 60.0 for r in by_holder.values())
    counts = sorted(by_holder.values())
    firsts = sorted(times[0] for times in arrivals.values())
    lasts = sorted(times[-1] for times in arrivals.values())
    print(
        f"  records: {records:,} of {expected:,}; requests: {stats['requests']} ({counts[0]} to "
        f"{counts[-1]} per holder), by status {stats['by_status']}"
    )
    print(
        f"  first request of each holder: {firsts[0]:.1f} to {firsts[-1]:.1f} s; last: "
        f"{lasts[0]:.1f} to {lasts[-1]:.1f} s (since the emulator's counters were reset)"
    )
    print(
        f"  at most {stats['max_in_flight']} requests in flight at the emulator, over "
        f"{stats['connections']} HTTP connections; tap peak RSS {result.maxrss_kib / 1024:.1f} MiB"
    )
    print(
        f"  CPU: tap {result.user + result.system:.1f} s, emulator {emulator_cpu:.1f} s "
        f"({(result.user + result.system) * 1000 / stats['requests']:.2f} and "
        f"{emulator_cpu * 1000 / stats['requests']:.2f} ms a request)"
    )
    print(f"  minimum wall time the limits allow: {minimum:.1f} s (holders' quotas in parallel)")
    print(f"  measured wall time:                 {result.wall:.1f} s")
    throttled = stats["throttled"]
    if minimum > 0:
        ratio = result.wall / minimum
        print(
            f"  ratio measured/minimum: {ratio:.2f}   target <= {case.target}   "
            f"{verdict(ratio <= case.target)}"
        )
        SUMMARY.append(
            f"{case.label}: {result.wall:.1f} s, quota minimum {minimum:.1f} s ({ratio:.2f} x, "
            f"target <= {case.target} x), {throttled} x 429   "
            f"{verdict(ratio <= case.target and throttled == 0)}"
        )
    else:
        print("  ratio measured/minimum: n/a (every holder's requests fit in one minute of quota)")
    print(f"  429 responses received: {throttled}   target 0   {verdict(throttled == 0)}")
    if records != expected:
        raise BenchError(f"{records} records written, the emulator holds {expected}")
