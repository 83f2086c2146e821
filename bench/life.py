"""`python -m bench.life` (what `make life` runs): a simulated stretch of a stack's life, on a clock, for the
token-rotated secrets of every example catalog (staging stacks), with the program as it is (`labelled`) and with
its versions as they were before they had a label of their own (`before`).

Every day: the rotations that fall due (the catalog's schedule, at a random hour of the day; `--every-hours`
replaces the schedule by a fixed rate, e.g. 4, AWS's fastest), AWS's removal of old versions (more than 100,
older than 24 hours: tests/life/aws.py), a `pulumi refresh`; every 7th day a `pulumi up` (tests/life/engine.py).
Counted per secret: rotations, values put back (an `up` that left AWSCURRENT on the program's first value after
a rotation had moved it), versions kept at the end, versions AWS removed. Results go to bench/results/life.json
with the seed; nothing passes or fails on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "life.json"
APPS = ("fieldkit", "filot", "ledgerly", "relaybox", "tria-aibpo", "whatsapp-saas")
DAY = 24 * 3600
RATE = re.compile(r"^rate\((\d+) (hours?|days?)\)$")


def period_seconds(rules: dict[str, Any]) -> float | None:
    """The rotation period of a SecretRotation's rules (days, or a `rate()` expression); None for `cron()`."""
    if rules.get("automaticallyAfterDays"):
        return float(rules["automaticallyAfterDays"]) * DAY
    match = RATE.match(str(rules.get("scheduleExpression", "")))
    if match:
        return int(match.group(1)) * (3600 if match.group(2).startswith("hour") else DAY)
    return None


def simulate(make: Callable[..., Any], app: str, variant: str, days: int, rng: random.Random,
             every_hours: int | None, only: str | None = None) -> dict[str, dict[str, Any]]:
    """One app's stack (or its secret `only`) through `days` days; per secret name, what happened."""
    from tests.life.engine import ROTATION

    life = make(app, variant, only)
    engine = life.engine
    if not life.resources:
        return {}
    engine.up(life.resources)
    names = {arn: life.sm.describe_secret(SecretId=arn)["Name"] for arn in life.secret_arns()}
    first = {arn: life.value_of(arn, version) for arn, version in engine.version_ids().items()}
    due: dict[str, float] = {}
    period: dict[str, float] = {}
    for record in (r for r in life.resources if r.type == ROTATION):
        arn = next(e.id for e in engine.state.values() if e.urn in record.property_dependencies["secretId"])
        seconds = every_hours * 3600.0 if every_hours else period_seconds(record.inputs.get("rotationRules") or {})
        if seconds is not None:
            period[arn] = seconds
            due[arn] = life.clock.now + seconds
    stats = {arn: {"rotations": 0, "valuesPutBack": 0, "versionsRemovedByAws": 0} for arn in names}
    rotated = set()
    start = life.clock.now
    for day in range(1, days + 1):
        end = start + day * DAY
        while True:
            arn = min(due, key=due.__getitem__, default=None)
            if arn is None or due[arn] > end:
                break
            life.clock.now = max(life.clock.now, due[arn] + rng.uniform(0, 3600))
            life.rotate(arn)
            stats[arn]["rotations"] += 1
            rotated.add(arn)
            due[arn] += period[arn]
        life.clock.now = end
        life.aws.remove_old_versions()
        engine.refresh()
        if day % 7 == 0:
            steps = engine.up(life.resources)
            written = {s.urn for s in steps if s.op in ("create", "replace")}
            for arn in set(names) & rotated:
                if written and life.current(arn) == first[arn]:
                    stats[arn]["valuesPutBack"] += 1
                    rotated.discard(arn)  # until the next rotation moves it on again
    for arn in names:
        stats[arn]["versionsKept"] = len(life.stages(arn))
        stats[arn]["versionsRemovedByAws"] = life.aws.removed_from.get(arn, 0)
    return {names[arn]: stats[arn] for arn in names}


SERVERS_KEY = "server credentials"
"""The key of the real-server year (tests/life/year.py) in bench/results/life.json."""


def servers_year(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """`--servers N`: a year of a generated catalog of N server credentials and tokens, rotated against real
    PostgreSQL and Redis, with consumer processes (tests/life/year.py); figures printed and returned."""
    import signal
    import tempfile

    from tests.life.year import KINDS, run_year, servers

    # A `kill` or timeout(1) stops the servers and consumer processes too (the context managers' exits run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with servers() as (moto, pg, redis), tempfile.TemporaryDirectory(prefix="life-") as work:
        result = run_year(moto, pg, redis, Path(work), size=args.servers, days=args.days, seed=seed,
                          watched=args.watched, refresh_every=args.refresh_every, check_every=args.check_hours * 3600,
                          every_days=args.every_days,
                          say=lambda line: print(f"  {line}", flush=True))
    print(f"{args.servers} server credentials rotated every {args.every_days} days, {args.days} days, seed {seed}, "
          f"refresh every {args.refresh_every} days, {result.seconds} s: "
          f"{sum(result.rotations.values())} rotations {result.rotations}, {result.failed_rotations} failed; "
          f"values put back {result.values_put_back}; preview changes {result.preview_changes}; versions per "
          f"secret max {result.versions_max} mean {result.versions_mean} (quota 100); removed by AWS "
          f"{result.versions_removed_by_aws}")
    print(f"{'strategy':28} " + " ".join(f"{k:>18}" for k in KINDS) + "   (failed/logins, * = refused)")
    for strategy, kinds in sorted(result.consumers.items()):
        cells = [f"{t.failed:>4}/{t.logins:<5}{'' if t.accepted else '*':1}" for t in kinds.values()]
        print(f"{strategy:28} " + " ".join(f"{c:>18}" for c in cells))
    for event in result.events:
        print(f"  {event}")
    return result.as_json()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.life", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every-hours", type=int, default=None,
                        help="rotate every N hours instead of the catalog's schedule (AWS allows 4 and more)")
    parser.add_argument("--apps", nargs="*", default=list(APPS))
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, recorded)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--servers", type=int, default=0, metavar="N",
                        help="instead: a year of N generated server credentials against real PostgreSQL and Redis, "
                             "with consumer processes (tests/life/year.py); `make life` runs 200")
    parser.add_argument("--watched", type=int, default=1, help="with --servers: secrets per strategy with consumers")
    parser.add_argument("--every-days", type=lambda text: tuple(int(d) for d in text.split(",")), default=(30, 60, 90),
                        help="with --servers: the schedules, comma-separated days, given to the secrets in turn")
    parser.add_argument("--check-hours", type=float, default=12,
                        help="with --servers: the consumers' routine logins every N hours (and after each rotation)")
    parser.add_argument("--refresh-every", type=int, default=7,
                        help="with --servers: a `pulumi refresh` every N days (and before every weekly up)")
    args = parser.parse_args(argv)
    if args.servers and not 4 <= args.servers <= 2000:
        parser.error("--servers takes 4 (one secret per strategy) to 2000")
    if not all(1 <= d <= 1000 for d in args.every_days):
        parser.error("--every-days takes days from 1 to 1000 (AutomaticallyAfterDays)")
    if args.days < 1 or args.watched < 1 or args.refresh_every < 1 or args.check_hours <= 0:
        parser.error("--days, --watched, --refresh-every and --check-hours must be positive")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    sys.path.insert(0, str(REPO))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("rotation").setLevel(logging.WARNING)
    if args.servers:
        figures = servers_year(args, seed)
        previous = json.loads(args.out.read_text()) if args.out.exists() else {}
        previous[SERVERS_KEY] = figures
        args.out.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
        return 0
    from tests.life.world import world
    from tests.servers import moto_server

    scenario = f"every {args.every_hours} hours" if args.every_hours else "catalog schedule"
    results: dict[str, Any] = {"seed": seed, "days": args.days, "scenario": scenario, "variants": {}}
    with moto_server() as moto:
        for variant in ("labelled", "before"):
            rng = random.Random(seed)
            began = time.monotonic()
            per_app = {}
            with world(moto) as make:
                for app in args.apps:
                    per_app[app] = simulate(make, app, variant, args.days, rng, args.every_hours)
            secrets_ = [s for app in per_app.values() for s in app.values()]
            summary = {
                "secrets": len(secrets_),
                "rotations": sum(s["rotations"] for s in secrets_),
                "valuesPutBack": sum(s["valuesPutBack"] for s in secrets_),
                "versionsKeptMax": max((s["versionsKept"] for s in secrets_), default=0),
                "versionsRemovedByAws": sum(s["versionsRemovedByAws"] for s in secrets_),
                "seconds": round(time.monotonic() - began, 1),
            }
            results["variants"][variant] = {"summary": summary, "apps": per_app}
            print(f"{scenario}, {args.days} days, {variant:9}: {summary}")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous[scenario] = results
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
