"""`kore-billing-sandbox`: run the emulated API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from types import FrameType

from tap_kore_billing.sandbox.server import Sandbox


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kore-billing-sandbox",
        description="Local emulator of the Kore.ai Billing Sessions API.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--apps", type=int, default=3)
    p.add_argument("--channels", default="rtm,ivr,msteams,whatsapp", help="comma-separated")
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--late", type=int, default=0)
    p.add_argument("--new", type=int, default=0)
    p.add_argument("--start", type=_iso, default=None, help="ISO 8601; default end - 120 days")
    p.add_argument("--end", type=_iso, default=None, help="ISO 8601; default now - 1 hour")
    p.add_argument("--max-page-size", type=int, default=50)
    p.add_argument(
        "--oversized-limit",
        choices=("cap", "reject", "fail"),
        default="cap",
        help="a limit above --max-page-size is capped silently, refused (400) or fails (500)",
    )
    p.add_argument("--max-range-days", type=int, default=None, help="default: 3 months")
    p.add_argument("--filter-field", choices=("start", "end"), default="start")
    p.add_argument("--tz", default="UTC")
    p.add_argument("--notification-fraction", type=float, default=0.15)
    p.add_argument("--extra-field-fraction", type=float, default=0.1)
    p.add_argument("--boundary-fraction", type=float, default=0.03)
    p.add_argument("--rate-per-minute", type=int, default=None)
    p.add_argument("--rate-per-hour", type=int, default=None)
    p.add_argument("--no-retry-after", action="store_true")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--truncate-rate", type=float, default=0.0)
    p.add_argument("--slow-rate", type=float, default=0.0)
    p.add_argument("--slow-seconds", type=float, default=2.0)
    p.add_argument(
        "--latency-seconds", type=float, default=0.0, help="service time of each answer (0: none)"
    )
    p.add_argument(
        "--latency-per-row-seconds", type=float, default=0.0, help="added per row served"
    )
    p.add_argument(
        "--latency-jitter", type=float, default=0.0, help="+- this fraction, uniform (0 to 1)"
    )
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--client-id", default="cs-sandbox-0000")
    p.add_argument(
        "--client-secret",
        default=None,
        help="default: $KORE_SANDBOX_CLIENT_SECRET, else a generated one (printed)",
    )
    p.add_argument("--no-enforce-jti", action="store_true")
    p.add_argument("--no-admin", action="store_true", help="admin path answers 403")
    p.add_argument("--allow-unknown-apps", action="store_true", help="unknown botId: no rows")
    summary = p.add_argument_group("usage summary jobs")
    summary.add_argument(
        "--summary-polls", type=int, default=2, help="status GETs a job stays IN_PROGRESS"
    )
    summary.add_argument("--summary-fail", action="store_true", help="every job ends FAILED")
    summary.add_argument(
        "--summary-foreign-polls",
        type=int,
        default=0,
        help="status GETs after each POST that show a second client's finished job",
    )
    summary.add_argument(
        "--summary-admin-path",
        choices=("bots", "plain", "both"),
        default="plain",
        help="which account-wide path exists: /api/public/bots/... or /api/public/...",
    )
    summary.add_argument("--summary-bucket-by", choices=("start", "end"), default="start")
    summary.add_argument(
        "--summary-discrepancy",
        action="append",
        default=[],
        metavar="APP:DAY:UNIT:DELTA",
        help="shift a summary counter away from the detail rows, e.g. "
        "1:2024-03-05:conversations:+2 (APP: an st-... ID or the app's 1-based position); "
        "repeatable",
    )
    return p


def _discrepancies(specs: Sequence[str], bot_ids: Sequence[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for spec in specs:
        parts = spec.rsplit(":", 3)
        if len(parts) != 4:
            raise ValueError(f"--summary-discrepancy {spec!r}: expected APP:DAY:UNIT:DELTA")
        app, day, unit, delta = parts
        if app.isdigit():
            position = int(app)
            if not 1 <= position <= len(bot_ids):
                raise ValueError(f"--summary-discrepancy {spec!r}: no app number {position}")
            app = bot_ids[position - 1]
        out.append({"botId": app, "day": day, "unit": unit, "delta": int(delta)})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground; returns the exit status."""
    args = _parser().parse_args(argv)
    secret = args.client_secret or os.environ.get("KORE_SANDBOX_CLIENT_SECRET") or None
    try:
        sandbox = Sandbox(
            seed=args.seed,
            apps=args.apps,
            channels=tuple(c.strip() for c in args.channels.split(",") if c.strip()),
            sessions=args.sessions,
            late=args.late,
            new=args.new,
            start=args.start,
            end=args.end,
            max_page_size=args.max_page_size,
            max_range_days=args.max_range_days,
            filter_field=args.filter_field,
            tz=args.tz,
            notification_fraction=args.notification_fraction,
            extra_field_fraction=args.extra_field_fraction,
            boundary_fraction=args.boundary_fraction,
            rate_per_minute=args.rate_per_minute,
            rate_per_hour=args.rate_per_hour,
            retry_after=not args.no_retry_after,
            fault_seed=args.fault_seed,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            slow_rate=args.slow_rate,
            slow_seconds=args.slow_seconds,
            latency_seconds=args.latency_seconds,
            latency_per_row_seconds=args.latency_per_row_seconds,
            latency_jitter=args.latency_jitter,
            client_id=args.client_id,
            client_secret=secret,
            enforce_jti=not args.no_enforce_jti,
            admin_enabled=not args.no_admin,
            known_apps_only=not args.allow_unknown_apps,
            summary={
                "summary_polls": args.summary_polls,
                "summary_fail": args.summary_fail,
                "summary_foreign_polls": args.summary_foreign_polls,
                "summary_admin_path": args.summary_admin_path,
                "summary_bucket_by": args.summary_bucket_by,
            },
            host=args.host,
            port=args.port,
        )
        sandbox.configure(oversized_limit=args.oversized_limit)
        if args.summary_discrepancy:
            sandbox.configure(
                summary_discrepancies=_discrepancies(args.summary_discrepancy, sandbox.bot_ids)
            )
        sandbox.start()
    except (ValueError, OSError) as exc:
        print(f"kore-billing-sandbox: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    line = sandbox.info()
    if sandbox.secret_generated:
        # Generated secrets are printed because there is no other way to learn them.
        line["client_secret"] = sandbox.client_secret
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
