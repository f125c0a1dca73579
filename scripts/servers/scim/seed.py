"""Seeds a fresh tenant of the test SCIM server (scim2-server) with users,
managers (enterprise extension `manager`) and groups, through the REST API.

Run by `scripts/servers/scim.sh seed N_USERS N_GROUPS [PER_USER]`. Every run
makes a new tenant (`/<tenant>/v2`), so it always starts from an empty
directory. Users are created with `/Bulk` (boss first, then managers, then
everyone else, each referring to an existing manager id), groups with one
POST each, a few at a time.

The directory, deterministic for given N_USERS, N_GROUPS and PER_USER:
- user 1 is the boss and has no manager; every 20th user is a manager whose
  manager is the boss; every other user is managed by the manager of their
  block of 20, except every 50th, who has no manager;
- every 97th user is inactive;
- groups are named `tilgang-001`, `tilgang-002`, …; user i is a member of
  PER_USER consecutive groups starting at i mod N_GROUPS.

Prints KEY=VALUE lines (SCIM_URL, SCIM_TENANT, SCIM_TOKEN, SCIM_USERS,
SCIM_GROUPS, SCIM_MEMBERSHIPS, SCIM_SEED_JSON) and writes every id to the
JSON file SCIM_SEED_JSON names. Tenants seeded more than an hour before are
emptied (the server keeps every tenant in memory until it stops).
"""

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

GIVEN = ["Åse", "Øyvind", "Ærle", "Bjørn", "Sølvi", "Håkon", "Märta", "Jürgen", "Ingrid", "Ola"]
FAMILY = ["Ødegård", "Åsheim", "Bræk", "Lindqvist", "Sæther", "Nilsen", "Øverås", "Dahl"]


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body=None, attempts: int = 3):
        data = None if body is None else json.dumps(body).encode()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/scim+json",
            "Content-Type": "application/scim+json",
        }
        for attempt in range(attempts):
            req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    raw = r.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:500]
                raise SystemExit(f"seed: {method} {path} answered {e.code}: {detail}") from None
            except OSError:
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.5)
        return None

    def bulk_create(self, resources: list[dict], endpoint: str) -> list[str]:
        """Creates resources with one /Bulk request per 500; returns their ids in order."""
        ids: list[str] = []
        for start in range(0, len(resources), 500):
            chunk = resources[start : start + 500]
            ops = [
                {"method": "POST", "path": f"/{endpoint}", "bulkId": f"b{start + n}", "data": r}
                for n, r in enumerate(chunk)
            ]
            out = self.call("POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": ops})
            by_bulk = {op.get("bulkId"): op for op in out.get("Operations", [])}
            for n in range(len(chunk)):
                op = by_bulk.get(f"b{start + n}")
                if op is None or str(op.get("status")) != "201":
                    raise SystemExit(f"seed: bulk create of {endpoint} failed: {json.dumps(op)[:500]}")
                ids.append(op["location"].rstrip("/").rsplit("/", 1)[-1])
        return ids


def prune(out_dir: str, token: str, max_age: float = 3600) -> None:
    """Empties the tenants of seeds older than `max_age` seconds (the server
    keeps every tenant in memory until it stops) and forgets their files."""
    now = time.time()
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        try:
            if not name.endswith(".json") or now - os.path.getmtime(path) < max_age:
                continue
            # Claim it: seeds run in parallel (one per test), and only the one
            # whose rename succeeds empties that tenant.
            claimed = f"{path}.pruning-{os.getpid()}"
            os.rename(path, claimed)
            path = claimed
        except FileNotFoundError:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            api = Api(old["url"], token)
            paths = [f"/Groups/{g['id']}" for g in old["groups"]] + [f"/Users/{u['id']}" for u in old["users"]]
            for start in range(0, len(paths), 1000):
                ops = [{"method": "DELETE", "path": p} for p in paths[start : start + 1000]]
                api.call("POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": ops})
        except (OSError, ValueError, KeyError, SystemExit) as e:
            print(f"seed: could not empty the old tenant of {name}: {e}", file=sys.stderr)
        os.remove(path)


def manager_of(i: int) -> int | None:
    """The index of user i's manager (0-based), or None."""
    if i == 0 or i % 50 == 49:
        return None
    if i % 20 == 0:
        return 0
    return (i // 20) * 20


def user_body(i: int, width: int, manager_id: str | None) -> dict:
    given = GIVEN[i % len(GIVEN)]
    family = FAMILY[(i // len(GIVEN)) % len(FAMILY)]
    user_name = f"user{i + 1:0{width}d}"
    body = {
        "schemas": [CORE_USER, ENTERPRISE],
        "userName": user_name,
        "displayName": f"{given} {family} {i + 1}",
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": f"{user_name}@kommune.example.no", "type": "work", "primary": True}],
        "active": i % 97 != 96,
    }
    if manager_id is not None:
        body[ENTERPRISE] = {"manager": {"value": manager_id}}
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--token", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--per-user", type=int, default=2)
    parser.add_argument("--tenant", default=None)
    args = parser.parse_args()
    if args.users < 1 or args.groups < 1 or args.per_user < 0:
        raise SystemExit("seed: N_USERS and N_GROUPS must be at least 1")

    started = time.monotonic()
    os.makedirs(args.out_dir, exist_ok=True)
    prune(args.out_dir, args.token)
    tenant = args.tenant or f"seed-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    url = f"{args.root.rstrip('/')}/{tenant}/v2"
    api = Api(url, args.token)
    n, width = args.users, max(4, len(str(args.users)))

    ids: list[str | None] = [None] * n
    # Boss, then managers, then the rest: each refers to an id that exists.
    waves = [[0], [i for i in range(1, n) if i % 20 == 0], [i for i in range(1, n) if i % 20 != 0]]
    for wave in waves:
        bodies = [user_body(i, width, ids[m] if (m := manager_of(i)) is not None else None) for i in wave]
        for i, created in zip(wave, api.bulk_create(bodies, "Users")):
            ids[i] = created

    per_user = min(args.per_user, args.groups)
    members: list[list[int]] = [[] for _ in range(args.groups)]
    for i in range(n):
        for j in range(per_user):
            members[(i + j) % args.groups].append(i)
    gwidth = max(3, len(str(args.groups)))

    def make_group(g: int) -> str:
        body = {
            "schemas": [CORE_GROUP],
            "displayName": f"tilgang-{g + 1:0{gwidth}d}",
            "members": [{"value": ids[i], "type": "User"} for i in members[g]],
        }
        return api.call("POST", "/Groups", body)["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        group_ids = list(pool.map(make_group, range(args.groups)))

    seed = {
        "url": url,
        "tenant": tenant,
        "users": [
            {
                "id": ids[i],
                "userName": f"user{i + 1:0{width}d}",
                "email": f"user{i + 1:0{width}d}@kommune.example.no",
                "manager": ids[m] if (m := manager_of(i)) is not None else None,
                "active": i % 97 != 96,
            }
            for i in range(n)
        ],
        "groups": [
            {"id": group_ids[g], "displayName": f"tilgang-{g + 1:0{gwidth}d}", "members": [ids[i] for i in members[g]]}
            for g in range(args.groups)
        ],
    }
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, f"{tenant}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(seed, f, ensure_ascii=False)
    memberships = sum(len(m) for m in members)
    print(f"SCIM_URL={url}")
    print(f"SCIM_TENANT={tenant}")
    print(f"SCIM_TOKEN={args.token}")
    print(f"SCIM_USERS={n}")
    print(f"SCIM_GROUPS={args.groups}")
    print(f"SCIM_MEMBERSHIPS={memberships}")
    print(f"SCIM_SEED_JSON={path}")
    print(
        f"seed: {n} users, {args.groups} groups, {memberships} memberships "
        f"in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
