"""Runs scim2-tester's RFC 7643/7644 checks against a SCIM base URL and
prints one line per check and a tally by status.

Run by `scripts/servers/scim.sh check [URL]` (default: a fresh tenant of the
test server, so the checks' creations and deletions touch no seeded data).
Exits 0 unless a check ended in ERROR or CRITICAL (`--strict`) — by default
it only reports, since what is checked is the server, not vakt.
"""

import argparse
import collections
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    http = httpx2.Client(
        base_url=args.url,
        headers={"Authorization": f"Bearer {args.token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    tally = collections.Counter()
    for r in results:
        tally[r.status.name] += 1
        reason = f": {r.reason}" if getattr(r, "reason", None) else ""
        print(f"{r.status.name:<10} {r.title}{reason}")
    print("scim2-tester: " + ", ".join(f"{n} {s}" for s, n in sorted(tally.items())), file=sys.stderr)
    bad = tally[Status.ERROR.name] + tally[Status.CRITICAL.name]
    sys.exit(1 if args.strict and bad else 0)


if __name__ == "__main__":
    main()
