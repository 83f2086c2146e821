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


EXAMPLES_KEY = "examples"
"""The key of the example stacks' spans (tests/life/seeds.py) in bench/results/life.json."""


def examples_span(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """`--examples DAYS`: every example's staging and production stacks through DAYS days (tests/life/seeds.py),
    rotated every `--examples-every` days; PostgreSQL and Redis credentials without server logins (said per stack)."""
    import dataclasses

    from tests.life.seeds import seed_span
    from tests.servers import moto_server

    spans = []
    with moto_server() as moto:
        for app in args.apps:
            for stack in ("staging", "production"):
                span = seed_span(moto, app, args.examples, seed, stack_name=stack,
                                 rotate_every_days=args.examples_every)
                logins = (f"; WITHOUT SERVER LOGINS (no server configured): {span.without_logins}"
                          if span.without_logins else "")
                print(f"{app}/{stack}: {span.secrets} secrets, rotations {span.rotations}, failed "
                      f"{len(span.failed_rotations)}, values put back {span.values_put_back}, preview changes "
                      f"{span.preview_changes}{logins}" + (f"; not played: {span.not_rotated}" if span.not_rotated
                                                          else "") + f" ({span.seconds} s)", flush=True)
                spans.append(dataclasses.asdict(span))
    return {"seed": seed, "days": args.examples, "rotateEveryDays": args.examples_every,
            "serverLogins": "none: the examples' servers do not exist here; setSecret, testSecret and the retiring "
                            "of old passwords skipped for postgres-* and redis-acl",
            "stacks": spans}


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
          f"{result.seconds} s: {sum(result.rotations.values())} rotations {result.rotations}, "
          f"{result.failed_rotations} failed; values put back {result.values_put_back}; preview changes "
          f"{result.preview_changes}; versions per secret max {result.versions_max} mean {result.versions_mean} "
          f"(quota 100); removed by AWS {result.versions_removed_by_aws}")
    print(f"refresh: daily, only {result.daily_refresh} ({result.refreshed_daily} resources read in all); full every "
          f"{args.refresh_every} days and before each weekly up ({result.refreshed_full} read); changes a full refresh "
          f"found that the daily ones had missed: {result.refresh_missed} {result.refresh_missed_what or ''}")
    for edit in result.edits:
        print(f"catalog edit, day {edit['day']}: {edit['edits']}: {len(edit['steps'])} steps, values put back "
              f"{edit['valuesPutBack']}, preview changes after {edit['previewChangesAfter']}, failed steps "
              f"{edit['failedSteps'] or 'none'}")
    print(f"{'strategy':28} " + " ".join(f"{k:>18}" for k in KINDS) + "   (failed/logins; * = production refuses)")
    reasons: dict[str, str] = {}
    for strategy, kinds in sorted(result.consumers.items()):
        cells = [f"{t.failed:>4}/{t.logins:<5}{'' if t.accepted else '*':1}" for t in kinds.values()]
        print(f"{strategy:28} " + " ".join(f"{c:>18}" for c in cells))
        reasons.update({f"{strategy} / {k}": t.refused_because for k, t in kinds.items() if not t.accepted})
    for pair, reason in reasons.items():
        print(f"  refused: {pair}: {reason}")
    for event in result.events:
        print(f"  {event}")
    return result.as_json()


COLUMNS = {"ecs": "`ecs`", "lambda-cold-start": "`lambda-cold-start`", "cached-1h": "runtime, 1 h cache",
           "cached-5min": "runtime, 5 min cache", "request": "runtime, every read"}


def table(figures: dict[str, Any]) -> str:
    """The README's table of a server-credentials year: failed logins / logins per strategy and consumer kind,
    "refused" where production refuses the pair (the `accepted` each row recorded)."""
    lines = ["| strategy | rotations | " + " | ".join(COLUMNS.values()) + " |",
             "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    for strategy, kinds in sorted(figures["consumers"].items()):
        cells = [f"{t['failed']} / {t['logins']}" + ("" if t["accepted"] else " (refused)") if (t := kinds.get(k))
                 else "not run" for k in COLUMNS]
        lines.append(f"| `{strategy}` | {figures['rotations'].get(strategy, 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
                        help="with --servers: a full `pulumi refresh` every N days (and before every weekly up); "
                             "every day, a refresh of the versions whose labels moved")
    parser.add_argument("--examples", type=int, default=0, metavar="DAYS",
                        help="instead: every example's staging and production stacks through DAYS days "
                             "(tests/life/seeds.py)")
    parser.add_argument("--examples-every", type=float, default=5,
                        help="with --examples: rotate every N days instead of the catalog's schedule")
    parser.add_argument("--table", action="store_true",
                        help="instead: print the README's table of the last --servers year in --out")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.out.read_text())[SERVERS_KEY]))
        return 0
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
    if args.servers or args.examples:
        figures = servers_year(args, seed) if args.servers else examples_span(args, seed)
        previous = json.loads(args.out.read_text()) if args.out.exists() else {}
        previous[SERVERS_KEY if args.servers else EXAMPLES_KEY] = figures
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
