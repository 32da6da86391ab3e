"""`make focus-validate`: a FOCUS export checked by the FinOps Foundation's own validator,
focus-validator 2.2.1 (its FOCUS 1.2 model), in .venv-focus (`make focus-validator`).

    python scripts/focus_validate.py FILE [FILE ...]   # CSV or Parquet; exit 0: no failing rule
    python scripts/focus_validate.py --patch           # once, after installing (the Makefile)

Runs `python -m focus_validator.main --validate-version 1.2 --block-download` (offline: the model
ships in the package) from the validator's package folder, which it opens its currency list
relative to, and prints its summary line, `Total: N | Pass: N | Fail: N | Skipped: N`, and every
failing rule. One failure is the validator's, not the data's, and is allowed: it scores both
leaves of the alternative InvoiceId-C-003-C on every row (InvoiceId-C-004-C "MUST be null when
not invoiced", InvoiceId-C-005-C "MUST NOT be null when invoiced"), so exactly one of them fails
while the alternative passes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-focus"
SUMMARY = re.compile(r"^Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)$", re.M)
RESULT = re.compile(r"^\S*\s*([A-Za-z]+-[A-Z]-\d{3}-[A-Z]): (PASS|FAIL|SKIPPED)\b(.*)$", re.M)
ALTERNATIVE = "InvoiceId-C-003-C"
LEAVES = frozenset({"InvoiceId-C-004-C", "InvoiceId-C-005-C"})
# Its one line of Python 3.12 syntax (a backslash inside an f-string's braces), as plain
# concatenation that 3.11 reads: the same SQL list of quoted keys.
PATCHED_FILE = "config_objects/focus_to_duckdb_converter.py"
ORIGINAL_LINE = """+ ", ".join(f"'{k.replace('\\"', '\\"\\"')}'" for k in ignore_keys)"""
PATCHED_LINE = """+ ", ".join("'" + k.replace('"', '""') + "'" for k in ignore_keys)"""


class ValidatorError(Exception):
    """The validator is missing or did not run: one line saying what to do."""


@dataclass
class Verdict:
    """What the validator said about one file."""

    summary: str
    failing: dict[str, str] = field(default_factory=dict)  # rule -> the validator's words
    passing: set[str] = field(default_factory=set)
    allowed: str | None = None  # the InvoiceId leaf that fails by the validator's scoring

    @property
    def ok(self) -> bool:
        return not self.failing


def package_folder(venv: Path = VENV) -> Path:
    """The validator's package folder (its parent is where it must be started from)."""
    found = sorted(venv.glob("lib/python*/site-packages/focus_validator"))
    if not found:
        raise ValidatorError(
            f"focus-validator is not installed in {venv}: run `make focus-validator`"
        )
    return found[-1]


def patch(folder: Path) -> bool:
    """Makes the validator importable on Python 3.11; True when it changed the file. Fails
    loudly when the expected line is not there (another version of the validator)."""
    path = folder / PATCHED_FILE
    text = path.read_text()
    if PATCHED_LINE in text:
        return False
    if text.count(ORIGINAL_LINE) != 1:
        raise ValidatorError(
            f"{path} does not hold the expected line {ORIGINAL_LINE.strip()!r} once: not "
            "focus-validator 2.2.1? Check scripts/focus-validator-requirements.txt"
        )
    path.write_text(text.replace(ORIGINAL_LINE, PATCHED_LINE))
    return True


def judge(output: str) -> Verdict:
    """The validator's console output as a verdict, the allowed InvoiceId leaf taken out."""
    summary = SUMMARY.search(output)
    if not summary:
        raise ValidatorError("the validator printed no `Total: ... | Skipped: N` line")
    verdict = Verdict(summary.group(0))
    for rule, status, rest in RESULT.findall(output):
        if status == "FAIL":
            verdict.failing[rule] = rest.strip()
        elif status == "PASS":
            verdict.passing.add(rule)
    if len(verdict.failing) != int(summary.group(3)):  # its line format changed: trust nothing
        raise ValidatorError(
            f"the validator counts {summary.group(3)} failing rules and "
            f"{len(verdict.failing)} could be read: {summary.group(0)}"
        )
    leaves = set(LEAVES) & set(verdict.failing)
    if len(leaves) == 1 and ALTERNATIVE in verdict.passing:
        verdict.allowed = leaves.pop()
        del verdict.failing[verdict.allowed]
    return verdict


def validate(data_file: Path, criteria: str | None = None, venv: Path = VENV) -> Verdict:
    """Runs the validator on `data_file` (CSV or Parquet) and judges what it printed."""
    if not data_file.is_file():
        raise ValidatorError(f"no file at {data_file}: run `make focus-export` first")
    folder = package_folder(venv)
    command = [
        str(venv / "bin" / "python"),
        "-m",
        "focus_validator.main",
        "--data-file",
        str(data_file.resolve()),
        "--validate-version",
        "1.2",
        "--block-download",
        "--show-violations",
    ]
    if criteria:
        command += ["--applicability-criteria", criteria]
    try:
        done = subprocess.run(
            command,
            cwd=folder.parent,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidatorError(f"the validator did not run on {data_file}: {exc}") from exc
    if done.returncode != 0 or not SUMMARY.search(done.stdout):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValidatorError(
            f"the validator failed on {data_file} (exit {done.returncode}): {last}"
        )
    return judge(done.stdout)


def report(data_file: Path, verdict: Verdict) -> str:
    lines = [f"{data_file}: {verdict.summary}"]
    if verdict.allowed:
        lines.append(
            f"  allowed: {verdict.allowed} (the validator scores both leaves of the alternative"
            f" {ALTERNATIVE}, which passes)"
        )
    lines += [f"  FAIL {rule}: {words}" for rule, words in sorted(verdict.failing.items())]
    lines.append("  no failing rule" if verdict.ok else f"  {len(verdict.failing)} failing rules")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="FOCUS exports (CSV or Parquet)")
    parser.add_argument("--patch", action="store_true", help="patch the installed validator")
    parser.add_argument(
        "--applicability-criteria", help="passed on to the validator (default: none)"
    )
    args = parser.parse_args(argv)
    try:
        if args.patch:
            changed = patch(package_folder())
            print("focus-validator patched for Python 3.11" if changed else "already patched")
            return 0
        if not args.files:
            parser.error("name at least one file (CSV or Parquet), or --patch")
        failed = False
        for data_file in args.files:
            verdict = validate(data_file, args.applicability_criteria)
            print(report(data_file, verdict))
            failed = failed or not verdict.ok
    except ValidatorError as exc:
        print(f"focus-validate: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
