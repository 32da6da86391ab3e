"""`kore-billing-sandbox`: run the emulated API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from tap_kore_billing.sandbox.knobs import KNOBS
from tap_kore_billing.sandbox.server import Sandbox


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _parser() -> argparse.ArgumentParser:
    """The command line, one flag per knob of `knobs.KNOBS` (values are checked there)."""
    p = argparse.ArgumentParser(
        prog="kore-billing-sandbox",
        description="Local emulator of the Kore.ai Billing Sessions API.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    summary = p.add_argument_group("usage summary jobs")
    p.add_argument(
        "--audit-case",
        action="append",
        default=[],
        metavar="FINDING:APP:DAY",
        help="plant billing sessions that break one billing rule on that app (1-based) and UTC "
        "day, e.g. over_counted:2:2024-03-05; FINDING: longer_than_15_minutes, "
        "overlaps_another_session, outside_its_conversation or over_counted; repeatable or "
        "comma-separated (the IDs: GET /__sandbox/audit_cases)",
    )
    for knob in KNOBS:
        if knob.flag == "":
            continue
        group = summary if knob.name.startswith("summary_") else p
        dashed = knob.name.replace("_", "-")
        if isinstance(knob.default, bool):
            flag = knob.flag or (f"--no-{dashed}" if knob.default else f"--{dashed}")
            group.add_argument(
                flag,
                dest=knob.name,
                action="store_const",
                const=not knob.default,
                default=None,
                help=f"turn off: {knob.help}" if knob.default else knob.help,
            )
            continue
        default = "" if knob.default is None else f" (default {_shown(knob.default)})"
        group.add_argument(
            knob.flag or f"--{dashed}",
            dest=knob.name,
            default=None,
            choices=knob.choices,
            metavar=None if knob.choices else knob.name.upper(),
            help=knob.help + default,
        )
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


def build(argv: Sequence[str]) -> Sandbox:
    """The emulator these command-line arguments describe, not yet started; ValueError names
    a bad argument."""
    args = _parser().parse_args(argv)
    options = {
        knob.name: getattr(args, knob.name)
        for knob in KNOBS
        if getattr(args, knob.name, None) is not None
    }
    if args.audit_case:
        options["audit_cases"] = ",".join(args.audit_case)
    secret = os.environ.get("KORE_SANDBOX_CLIENT_SECRET")
    if "client_secret" not in options and secret:
        options["client_secret"] = secret
    sandbox = Sandbox(host=args.host, port=args.port, **options)
    if args.summary_discrepancy:
        sandbox.configure(
            summary_discrepancies=_discrepancies(args.summary_discrepancy, sandbox.bot_ids)
        )
    return sandbox


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground; returns the exit status."""
    try:
        sandbox = build(sys.argv[1:] if argv is None else argv)
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
