"""The console script: the SDK's command line, with the input files checked first and every
failure ending as one clear line and exit 1 (the traceback at DEBUG level)."""

from __future__ import annotations

import logging
import os
import sys

from singer_sdk.exceptions import ConfigValidationError, FatalAPIError

from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.run.inputs import prepare_arguments
from tap_kore_billing.run.writer import DownstreamClosedError
from tap_kore_billing.tap import TapKoreBilling


def main() -> None:
    """Run the tap's command line with `sys.argv`."""
    logger = logging.getLogger(TapKoreBilling.name)
    try:
        command = TapKoreBilling.cli  # sets up the SDK's logging, which every line below uses
        args, notes = prepare_arguments(sys.argv[1:])
        for note in notes:
            logger.info("%s", note)
        command(args=args)
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error("%s", error)
        sys.exit(1)
    except DownstreamClosedError as exc:
        # Keep Python from printing another error while flushing the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        logger.error("tap-kore-billing stopped: %s", exc)
        sys.exit(1)
    except (TapKoreBillingError, FatalAPIError) as exc:
        logger.debug("Traceback of the failure:", exc_info=True)
        logger.error("tap-kore-billing failed: %s", exc)
        sys.exit(1)
    except Exception as exc:  # anything else still ends as one line, not a traceback
        logger.debug("Traceback of the failure:", exc_info=True)
        logger.error("tap-kore-billing failed: %s: %s", type(exc).__name__, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
