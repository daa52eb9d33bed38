"""CDK app entry point (``cdk.json`` → ``python3 infra/app.py``).

The stacks (data, search, ingestion, API, agent, observability) are built in issue P4 from the same
wiring the local cloud uses (docket.local.wiring.WIRING). Until then this app refuses to synthesize
rather than deploy something incomplete.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    sys.exit(
        "docket: the CDK stacks are not written yet (issue P4); run the local cloud with "
        "`make demo` or `docket serve`."
    )
