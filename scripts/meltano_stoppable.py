"""`meltano ARGS` that, when stopped by SIGTERM or SIGINT, keeps the state of what the tap
finished. The wrapper lives in the package (tap_kore_billing/meltano_stoppable.py, where its
reasons are written) so that orchestrators can run it too; this path stays for the docs
(docs/stops.md).

    python scripts/meltano_stoppable.py --environment=prod run tap-kore-billing target-postgres
"""

import sys

from tap_kore_billing.meltano_stoppable import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
