"""The sections that run without rate limits: `cpu_section` (records/second and CPU per record
of the tap against the hand-written reference extractor, whose records the tap's must match),
`page_size_section` (requests and sessions/request against a server that caps or refuses big
pages) and `memory_section` (the tap's peak RSS at two data sizes), with their timeouts and
targets.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from emulator_harness import (
    DATA_END,
    DATA_START,
    WINDOW_DAYS,
    BenchError,
    Emulator,
    RunResult,
    progress,
    read_output,
    reference_command,
    run_child,
    tap_command,
    write_config,
)
from report_format import SUMMARY, table, verdict

UNLIMITED = 10_000_000  # requests per minute/hour: the client-side limiter never waits

CPU_RUN_TIMEOUT = 600.0
MEMORY_RUN_TIMEOUT = 600.0

CPU_TARGET = 0.85  # reference CPU seconds / tap CPU seconds for the same records
MEMORY_TARGET = 1.1


def cpu_section(workdir: Path, secret: str, quick: bool, repeat: int) -> None:
    sessions = 20_000 if quick else 200_000
    print(
        f"\n== CPU ceiling: {sessions:,} sessions, 1 app, page_size 1000, window_days "
        f"{WINDOW_DAYS}, no rate limit; median of {repeat} alternating runs"
    )
    with Emulator(
        workdir,
        secret,
        sessions=sessions,
        apps=1,
        max_page_size=1000,
        start=DATA_START,
        end=DATA_END,
        seed=1,
    ) as emu:
        config = write_config(
            workdir,
            "cpu",
            emu.tap_config(
                page_size=1000, requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED
            ),
        )
        out, err = workdir / "cpu.jsonl", workdir / "cpu.stderr"
        commands = {"tap": tap_command(config), "reference": reference_command(config)}

        # Unmeasured warm-up: the emulator indexes each window on first use; also the yardstick
        # for the records check.
        progress("warm-up reference run")
        run_child(commands["reference"], out, err, CPU_RUN_TIMEOUT)
        expected = read_output(out, digest=True)

        results: dict[str, list[tuple[RunResult, int]]] = {"tap": [], "reference": []}
        checked = False
        for i in range(repeat):
            for name, command in commands.items():
                emu.reset_stats()
                result = run_child(command, out, err, CPU_RUN_TIMEOUT)
                got = read_output(out, digest=not checked and name == "tap")
                if name == "tap" and not checked:
                    checked = True
                    if (got.records, got.digest) != (expected.records, expected.digest):
                        raise BenchError(
                            f"the tap's records differ from the reference's: {got.records} "
                            f"records (digest {got.digest}) vs {expected.records} "
                            f"({expected.digest})"
                        )
                elif got.records != expected.records:
                    raise BenchError(f"{name} wrote {got.records} records, not {expected.records}")
                requests_made = emu.stats()["requests"]
                results[name].append((result, requests_made))
                progress(
                    f"{name} run {i + 1}/{repeat}: {result.wall:.2f} s, "
                    f"{result.user + result.system:.2f} cpu s, "
                    f"{got.records / result.wall:,.0f} records/s, {requests_made} requests"
                )
            out.unlink()

    rows = []
    medians = {}
    for name, runs in results.items():
        rates = [expected.records / r.wall for r, _ in runs]
        medians[name] = statistics.median(rates)
        rows.append(
            [
                name,
                *(f"{rate:,.0f}" for rate in rates),
                f"{medians[name]:,.0f}",
                f"{statistics.median(r.wall for r, _ in runs):.2f}",
                f"{statistics.median(r.user + r.system for r, _ in runs):.2f}",
                f"{statistics.median(r.maxrss_kib for r, _ in runs) / 1024:.0f}",
                runs[0][1],
            ]
        )
    header = [
        "extractor",
        *(f"run {i + 1} rec/s" for i in range(repeat)),
        "median rec/s",
        "wall s",
        "cpu s",
        "RSS MiB",
        "requests",
    ]
    print(table(header, rows))
    # CPU per record: the tap overlaps requests, so its wall time says less than its CPU.
    cpu = {
        name: statistics.median(r.user + r.system for r, _ in runs)
        for name, runs in results.items()
    }
    ratio = cpu["reference"] / cpu["tap"]
    print(
        f"  records per run: {expected.records:,} (tap's records identical to the reference's: "
        f"yes, digest {expected.digest})"
    )
    print(
        f"  CPU per record, tap/reference: {ratio:.2f} (reference {cpu['reference']:.2f} cpu s, "
        f"tap {cpu['tap']:.2f} cpu s)   target >= {CPU_TARGET}   {verdict(ratio >= CPU_TARGET)}"
    )
    print(
        f"  wall-time records/s, tap/reference: {medians['tap'] / medians['reference']:.2f} "
        "(whole process, start-up included; cpu s = user + system)"
    )
    SUMMARY.append(
        f"CPU per record: reference {cpu['reference']:.2f} s / tap {cpu['tap']:.2f} s = "
        f"{ratio:.2f} x (target >= {CPU_TARGET} x)   {verdict(ratio >= CPU_TARGET)}"
    )


def page_size_section(workdir: Path, secret: str, quick: bool) -> None:
    sessions = 5_000 if quick else 50_000
    print(
        f"\n== Page size: {sessions:,} sessions, 1 app, default page_size; a server that "
        "accepts 1,000 rows a request, and one that refuses more than 100 (HTTP 400)"
    )
    rows = []
    for label, policy in (("accepts 1,000", "cap"), ("refuses > 100", "reject")):
        with Emulator(
            workdir,
            secret,
            sessions=sessions,
            apps=1,
            max_page_size=1000 if policy == "cap" else 100,
            oversized_limit=policy,
            start=DATA_START,
            end=DATA_END,
            seed=4,
        ) as emu:
            config = write_config(
                workdir,
                "pages",
                emu.tap_config(requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED),
            )
            out, err = workdir / "pages.jsonl", workdir / "pages.stderr"
            emu.reset_stats()
            progress(f"tap run (server {label})")
            run_child(tap_command(config), out, err, CPU_RUN_TIMEOUT)
            stats = emu.stats()
            records = read_output(out).records
            out.unlink()
        refused = stats["by_status"].get("400", 0)
        rows.append(
            [
                label,
                f"{records:,}",
                stats["requests"],
                refused,
                f"{records / stats['requests']:.0f}",
            ]
        )
    print(table(["server", "records", "requests", "refused", "sessions/request"], rows))


def memory_section(workdir: Path, secret: str, quick: bool) -> None:
    sizes = (5_000, 20_000) if quick else (50_000, 200_000)
    print(
        f"\n== Memory: peak RSS (ru_maxrss of each process) at {sizes[0]:,} and "
        f"{sizes[1]:,} sessions, 1 app, page_size 1000, no rate limit"
    )
    rows = []
    peaks = {}
    for sessions in sizes:
        with Emulator(
            workdir,
            secret,
            sessions=sessions,
            apps=1,
            max_page_size=1000,
            start=DATA_START,
            end=DATA_END,
            seed=3,
        ) as emu:
            config = write_config(
                workdir,
                f"memory-{sessions}",
                emu.tap_config(
                    page_size=1000, requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED
                ),
            )
            out, err = workdir / "memory.jsonl", workdir / "memory.stderr"
            tap = run_child(tap_command(config), out, err, MEMORY_RUN_TIMEOUT)
            records = read_output(out).records
            reference = run_child(reference_command(config), out, err, MEMORY_RUN_TIMEOUT)
            if read_output(out).records != records:
                raise BenchError(f"tap and reference disagree on the record count at {sessions}")
            out.unlink()
        peaks[sessions] = tap.maxrss_kib
        progress(f"{sessions:,} sessions: tap {tap.maxrss_kib / 1024:.1f} MiB")
        rows.append(
            [
                f"{sessions:,}",
                f"{records:,}",
                f"{tap.maxrss_kib / 1024:.1f}",
                f"{reference.maxrss_kib / 1024:.1f}",
            ]
        )
    print(table(["sessions", "records", "tap peak RSS MiB", "reference peak RSS MiB"], rows))
    ratio = peaks[sizes[1]] / peaks[sizes[0]]
    print(
        f"  ratio tap {sizes[1]:,}/{sizes[0]:,}: {ratio:.2f}   target <= {MEMORY_TARGET}   "
        f"{verdict(ratio <= MEMORY_TARGET)}"
    )
