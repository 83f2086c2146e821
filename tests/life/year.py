"""A simulated year of a stack of server credentials, against real servers: what `make life` measures and
tests/life/test_year.py runs for a few weeks.

The stack is bench/generate.py's `server_catalog(size)`: PostgreSQL single-user and alternating-users
credentials and Redis ACL users of a real PostgreSQL and a real Redis server on 127.0.0.1 (tests/servers.py),
and tokens. The program runs once offline (preview/runtime.py); the test engine (tests/life/engine.py) applies
its Secret, SecretVersion and SecretRotation resources to moto, with moto's clock and AWS's version removal
(tests/life/aws.py); each rotation runs rotation/handler.py's real four steps against the real servers.

On the clock: rotations on each secret's own schedule (at a random minute of the day it falls due), every day
AWS's removal of old versions and a `pulumi refresh`, every 7th day a preview then a `pulumi up`; at fixed
points two incident rotations (`ops rotate`), a rollback (`ops rollback`, of a token: the credential
strategies refuse one), a rotation that fails at setSecret (the server unreachable) and its clean-up the next
day (`ops clear-pending`, then `ops rotate`).

Consumers (tests/life/consumer.py) are real processes holding the values of a few watched secrets per
strategy, one of each kind: `ecs` reads at start and is restarted 10 minutes after a rotation of its secret
plus the deployment (at most the 15 minutes docs/consumers.md allows; the restart function itself is tested in
tests/test_consumer_restarts.py, not here), `cached-1h` (the AWS caching client's default TTL), `cached-5min`
(the program's tolerance) and `request` (reads before every use). They log in at every check: every 6 hours,
and 1 s, 4 min, 15 min, 27 min and 62 min after each rotation of a watched secret. Whether the program accepts a
(strategy, kind) pair is components/consumers.py's `hazards` (refused in production).

Not emulated: the EventBridge rule, queue and restart function between a rotation and an ECS restart (the
restart happens at the documented bound); Lambda consumers; rotations overlapping in time (each RotateSecret
runs its four steps to the end before the clock moves); replicas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import io
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import LIFE_STACK, make_life_project
from components.consumers import (
    ECS_DEPLOYMENT_SECONDS,
    RESTART_WINDOW_SECONDS,
    TOLERATED_SECONDS,
    Consumption,
    EcsService,
    RuntimeRead,
    hazards,
)
from preview.model import CollectedResource, plain
from tests.conftest import REPO, run_stack
from tests.life.aws import Clock, aws_over_time
from tests.life.engine import ROTATION, SECRET, VERSION, Engine
from tests.life.world import FUNCTION, START, _regional, _role, _zip
from tests.servers import (
    LOOPBACK,
    MotoServer,
    PostgresServer,
    RedisServer,
    lambda_invokes_routed,
    moto_rotates_empty_secrets,
)

DAY = 86400
CHECK_EVERY = 6 * 3600
CHECKS_AFTER_ROTATION = (1, 240, 900, 1620, 3720)
"""Seconds after a rotation of a watched secret at which every consumer logs in."""


@dataclass(frozen=True)
class Kind:
    """A consumer kind: how its process reads, and what the stack would declare for it."""

    process: str
    ttl: float
    declared: Consumption


KINDS: dict[str, Kind] = {
    "ecs": Kind("start", 0, EcsService(cluster="life", service="app")),
    "cached-1h": Kind("cached", 3600, RuntimeRead(cache_ttl_seconds=3600)),
    "cached-5min": Kind("cached", 300, RuntimeRead(cache_ttl_seconds=300)),
    "request": Kind("request", 0, RuntimeRead(cache_ttl_seconds=0)),
}


@dataclass
class Tally:
    """One (strategy, consumer kind) pair's counts."""

    accepted: bool
    logins: int = 0
    failed: int = 0
    failed_beyond_tolerance: int = 0
    """Failed logins more than TOLERATED_SECONDS after the secret's last rotation."""
    restarts: int = 0


@dataclass
class YearResult:
    secrets: int
    days: int
    seed: int
    rotations: dict[str, int] = field(default_factory=dict)
    """Per strategy: rotations that completed (first installs at deploy excluded)."""
    failed_rotations: int = 0
    values_put_back: int = 0
    preview_changes: int = 0
    """Changes the weekly preview showed after rotations (goal 0)."""
    versions_max: int = 0
    versions_mean: float = 0.0
    versions_removed_by_aws: int = 0
    refresh_every_days: int = 1
    every_days: tuple[int, ...] = ()
    """The schedules the catalog gives its secrets in turn."""
    consumers: dict[str, dict[str, Tally]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("events")
        return out


class Consumer:
    """One consumer process (tests/life/consumer.py)."""

    def __init__(self, kind: str, arns: list[str], endpoint: str, region: str) -> None:
        spec = KINDS[kind]
        self.kind, self.arns = kind, arns
        self._args = [sys.executable, "-m", "tests.life.consumer", "--kind", spec.process, "--ttl", str(spec.ttl),
                      "--endpoint", endpoint, "--region", region, *arns]
        self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen(self._args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self._line() == {"ready": True}

    def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"consumer {self.kind} exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def check(self, now: float) -> dict[str, bool]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"now": now}) + "\n")
        self.process.stdin.flush()
        return {k: bool(v) for k, v in self._line().items()}

    def restart(self) -> None:
        self.stop()
        self._start()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _strategy(record: CollectedResource) -> str | None:
    return (record.inputs.get("tags") or {}).get("rotation-strategy")


def _period(rules: dict[str, Any]) -> float:
    return float(rules["automaticallyAfterDays"]) * DAY


def run_year(moto: MotoServer, pg: PostgresServer, redis: RedisServer, workdir: Path, *, size: int, days: int,
             seed: int, watched: int = 1, every_days: tuple[int, ...] = (30, 60, 90), refresh_every: int = 1,
             check_every: float = CHECK_EVERY, checks_after: tuple[float, ...] = CHECKS_AFTER_ROTATION,
             say: Callable[[str], None] = lambda _: None) -> YearResult:
    """The year (or `days` days) of `server_catalog(size)`, `watched` secrets per strategy with consumers, a
    refresh every `refresh_every` days (and before every weekly `up`), the consumers' routine checks every
    `check_every` seconds and `checks_after` each rotation of a watched secret."""
    from ops.secrets import clear_pending, rollback, rotate
    from ops.stack import load_stack
    from rotation import handler

    began = time.monotonic()
    rng = random.Random(seed)
    project = make_life_project(workdir, size, (LOOPBACK, pg.port, pg.superuser), (LOOPBACK, redis.port, "admin"),
                                every_days)
    program = run_stack(LIFE_STACK, project).run
    passwords = {"database-admin": pg.password, "redis-admin": redis.passwords["admin"]}
    region = "us-east-1"
    sm = _regional(moto, "secretsmanager", region)
    lam = _regional(moto, "lambda", region)
    result = YearResult(secrets=size, days=days, seed=seed, refresh_every_days=refresh_every, every_days=every_days)
    injected: set[tuple[str, str]] = set()
    name_by_arn: dict[str, str] = {}

    def invoke(event: dict[str, Any], environ: Any) -> None:
        name = name_by_arn.get(event["SecretId"], event["SecretId"])  # the event names it by name or by ARN
        hit = {(name, event["Step"])} & injected
        if hit:
            injected.difference_update(hit)
            raise ConnectionError("injected: the server is unreachable")
        handler.handle(event, environ, sm)

    with contextlib.ExitStack() as stack:
        stack.enter_context(moto_rotates_empty_secrets())
        router = stack.enter_context(lambda_invokes_routed(invoke))
        aws = stack.enter_context(aws_over_time(Clock(START)))
        clock = aws.clock
        chosen = [r for r in program.resources if r.type in (SECRET, VERSION, ROTATION)]
        secret_names = {r.urn: r.inputs["name"] for r in chosen if r.type == SECRET}
        strategy_of = {r.inputs["name"]: _strategy(r) for r in chosen if r.type == SECRET}
        externals: dict[str, str | None] = {r.inputs["kmsKeyId"]: None for r in chosen
                                            if r.type == SECRET and r.inputs.get("kmsKeyId")}
        role = _role(moto)
        for function in (r for r in program.resources if r.type == FUNCTION):
            created = lam.create_function(
                FunctionName=function.inputs["name"], Runtime="python3.12", Role=role,
                Handler="rotation.handler.lambda_handler", Code={"ZipFile": _zip()},
                Environment={"Variables": dict(function.inputs["environment"]["variables"])})
            externals[f"arn:aws:lambda:{region}:123456789012:function:{function.inputs['name']}"] = \
                created["FunctionArn"]
            stack.callback(lam.delete_function, FunctionName=created["FunctionName"])
        engine = Engine(sm, externals)
        stack.callback(_delete_all, sm, engine)

        # The masters first: the credentials' first versions name them by ARN (`masterarn`), which moto makes.
        def of_secret(names: set[str]) -> list[CollectedResource]:
            return [r for r in chosen if secret_names.get(r.urn) in names or any(
                secret_names.get(d) in names for d in r.property_dependencies.get("secretId", ()))]

        master_names = {f"lifeapp/{LIFE_STACK}/{m}" for m in passwords}
        masters = []
        for record in of_secret(master_names):
            if record.type == VERSION:
                owner = secret_names[record.property_dependencies["secretId"][0]].rsplit("/", 1)[1]
                value = json.loads(plain(record.inputs["secretString"]))
                value["password"] = passwords[owner]  # what `pulumi up` decrypts from the `secure:` entry
                record = dataclasses.replace(record, inputs={**record.inputs, "secretString": json.dumps(value)})
            masters.append(record)
        engine.up(masters)
        mock_arn = {secret_names[r.property_dependencies["secretId"][0]]: str(plain(r.inputs["secretId"]))
                    for r in masters if r.type == VERSION}
        real_arn = {secret_names[e.urn]: e.id for e in engine.state.values() if e.type == SECRET}
        resources = list(masters)
        for record in chosen:
            if record in masters or any(r.urn == record.urn for r in masters):
                continue
            if record.type == VERSION:
                text = str(plain(record.inputs["secretString"]))
                for name, arn in mock_arn.items():
                    text = text.replace(arn, real_arn[name])
                record = dataclasses.replace(record, inputs={**record.inputs, "secretString": text})
            resources.append(record)
        say(f"deploy: {len(resources)} resources")
        engine.up(resources)  # the server credentials' first installs run now (RotateImmediately)
        failed = [(c.event["Step"], type(c.error).__name__) for c in router.calls if c.error]
        assert not failed, f"first installs failed: {failed}"
        arn_of = {secret_names[e.urn]: e.id for e in engine.state.values() if e.type == SECRET}
        name_of = {a: n for n, a in arn_of.items()}
        name_by_arn.update(name_of)
        version_urn = {secret_names[r.property_dependencies["secretId"][0]]: r.urn
                       for r in resources if r.type == VERSION}

        # Schedules, and the watched secrets with their consumers.
        due: list[tuple[float, int, str, str]] = []
        period: dict[str, float] = {}
        order = 0

        def push(at: float, what: str, arg: str = "") -> None:
            nonlocal order
            order += 1
            heapq.heappush(due, (at, order, what, arg))

        for record in (r for r in resources if r.type == ROTATION):
            name = secret_names[record.property_dependencies["secretId"][0]]
            period[name] = _period(record.inputs["rotationRules"])
            push(clock.now + period[name] + rng.uniform(0, DAY), "rotate", name)
        by_strategy: dict[str, list[str]] = {}
        for name in sorted(period):
            by_strategy.setdefault(str(strategy_of[name]), []).append(name)
        watch = {n for names in by_strategy.values() for n in names[:watched]}
        endpoint = moto.endpoint_url
        shared = {kind: Consumer(kind, [arn_of[n] for n in sorted(watch)], endpoint, region)
                  for kind in KINDS if kind != "ecs"}
        ecs = {n: Consumer("ecs", [arn_of[n]], endpoint, region) for n in sorted(watch)}
        for consumer in [*shared.values(), *ecs.values()]:
            stack.callback(consumer.stop)
        tallies: dict[str, dict[str, Tally]] = {}
        for strategy, names in by_strategy.items():
            entry_hazard = {kind: bool(hazards(_catalog_entry(project, names[0]), {"c": spec.declared}))
                            for kind, spec in KINDS.items()}
            tallies[strategy] = {kind: Tally(accepted=not refused) for kind, refused in entry_hazard.items()}
        result.consumers = tallies
        last_rotated: dict[str, float] = {n: clock.now for n in period}
        restart_pending: set[str] = set()

        def check() -> None:
            answers: list[tuple[str, dict[str, bool]]] = [(k, c.check(clock.now)) for k, c in shared.items()]
            answers += [("ecs", c.check(clock.now)) for c in ecs.values()]
            for kind, answer in answers:
                for arn, ok in answer.items():
                    name = name_of[arn]
                    tally = tallies[str(strategy_of[name])][kind]
                    tally.logins += 1
                    if not ok:
                        tally.failed += 1
                        if clock.now - last_rotated[name] > TOLERATED_SECONDS:
                            tally.failed_beyond_tolerance += 1

        def rotated(name: str) -> None:
            last_rotated[name] = clock.now
            result.rotations[str(strategy_of[name])] = result.rotations.get(str(strategy_of[name]), 0) + 1
            if name in watch:
                for after in checks_after:
                    push(clock.now + after, "check")
                if name not in restart_pending:  # several rotations within the window: one restart
                    restart_pending.add(name)
                    push(clock.now + RESTART_WINDOW_SECONDS + rng.uniform(60, ECS_DEPLOYMENT_SECONDS), "restart", name)

        def current_version(name: str) -> str:
            stages = sm.describe_secret(SecretId=arn_of[name])["VersionIdsToStages"]
            return next(v for v, s in stages.items() if "AWSCURRENT" in s)

        ops_stack = load_stack(LIFE_STACK, project)
        out, err = io.StringIO(), io.StringIO()
        watched_of = {s: sorted(n for n in watch if strategy_of[n] == s) for s in by_strategy}
        incidents = {
            max(1, days // 3): ("ops-rotate", watched_of.get("postgres-single-user", [""])[0]),
            max(2, 2 * days // 3): ("ops-rotate", watched_of.get("redis-acl", [""])[0]),
            max(1, days // 2): ("rollback", watched_of.get("token", [""])[0]),
            max(1, days // 4): ("fail", watched_of.get("postgres-alternating-users", [""])[0]),
        }
        for day in range(1, days + 1):
            push(START + day * DAY, "day", str(day))
        for step in range(1, int(days * DAY // check_every) + 1):
            push(START + step * check_every - 1, "check")
        end = START + days * DAY
        check()
        failing: dict[str, float] = {}
        while due and due[0][0] <= end:
            at, _, what, arg = heapq.heappop(due)
            clock.now = max(clock.now, at)
            if what == "rotate":
                push(clock.now + period[arg], "rotate", arg)
                if arg in failing:
                    continue  # RotateSecret would be refused: the failed rotation's AWSPENDING is still there
                calls = len(router.calls)
                sm.rotate_secret(SecretId=arn_of[arg])
                if any(c.error for c in router.calls[calls:]):
                    result.failed_rotations += 1
                    failing[arg] = clock.now
                    result.events.append(f"day {(clock.now - START) / DAY:.1f}: rotation of {arg} failed")
                else:
                    rotated(arg)
            elif what == "check":
                check()
            elif what == "restart":
                restart_pending.discard(arg)
                ecs[arg].restart()
                tallies[str(strategy_of[arg])]["ecs"].restarts += 1
            elif what == "day":
                day = int(arg)
                aws.remove_old_versions()
                if day % refresh_every == 0 or day % 7 == 0:
                    engine.refresh()
                incident, target = incidents.get(day, ("", ""))
                if incident == "fail" and target:
                    # An hour later a rotation of the target fails at setSecret, before the server changes.
                    heapq.heappush(due, (clock.now + 3600, 0, "failing-rotation", target))
                elif incident == "ops-rotate" and target and target not in failing:
                    rotate(ops_stack, sm, target.rsplit("/", 1)[1], out)
                    rotated(target)
                    result.events.append(f"day {day}: ops rotate {target}")
                elif incident == "rollback" and target:
                    if any("AWSPREVIOUS" in s for s in
                           sm.describe_secret(SecretId=arn_of[target])["VersionIdsToStages"].values()):
                        rollback(ops_stack, sm, target.rsplit("/", 1)[1], out, err, yes=True, confirm=lambda _: None)
                        last_rotated[target] = clock.now
                        result.events.append(f"day {day}: ops rollback {target}")
                    else:  # not rotated yet: nothing to roll back to (ops refuses); the next free day
                        incidents[min(d for d in range(day + 1, day + len(incidents) + 2) if d not in incidents)] = \
                            (incident, target)
                for name, since in list(failing.items()):
                    if clock.now - since >= DAY:  # the clean-up: clear the stale AWSPENDING, rotate again
                        clear_pending(ops_stack, sm, name.rsplit("/", 1)[1], out, err, yes=True,
                                      confirm=lambda _: None)
                        rotate(ops_stack, sm, name.rsplit("/", 1)[1], out)
                        del failing[name]
                        rotated(name)
                        result.events.append(f"day {day}: cleared and rotated {name} again")
                if day % 7 == 0:
                    result.preview_changes += len(engine.up(resources, dry_run=True))
                    before = {n: current_version(n) for n in version_urn}
                    steps = engine.up(resources)
                    written = {s.urn for s in steps if s.op in ("create", "replace")}
                    for name, urn in version_urn.items():
                        if urn in written and current_version(name) != before[name]:
                            result.values_put_back += 1
                if day % 30 == 0:
                    say(f"day {day}: {sum(result.rotations.values())} rotations")
            elif what == "failing-rotation":
                calls = len(router.calls)
                injected.add((arg, "setSecret"))
                sm.rotate_secret(SecretId=arn_of[arg])
                injected.discard((arg, "setSecret"))
                assert any(c.error for c in router.calls[calls:]), f"the failure injected into {arg} did not happen"
                result.failed_rotations += 1
                failing[arg] = clock.now
                result.events.append(f"day {(clock.now - START) / DAY:.1f}: rotation of {arg} failed at setSecret")
        counts = [len(sm.list_secret_version_ids(SecretId=a, IncludeDeprecated=True)["Versions"])
                  for a in arn_of.values()]
        result.versions_max = max(counts)
        result.versions_mean = round(sum(counts) / len(counts), 1)
        result.versions_removed_by_aws = aws.removed
    result.seconds = round(time.monotonic() - began, 1)
    return result


def _delete_all(sm: Any, engine: Engine) -> None:
    """moto's backends live as long as the process: what the year made goes (nothing of other tests')."""
    from botocore.exceptions import ClientError

    for arn in {rid.split("|")[0] for rid in engine.created}:
        with contextlib.suppress(ClientError):
            sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def _catalog_entry(project: Path, full_name: str) -> dict[str, Any]:
    """{name: catalog entry} of one secret, its consumer renamed `c` (the declaration tried)."""
    from components.catalog.checks import load_catalog

    name = full_name.rsplit("/", 1)[1]
    entry = load_catalog(project / "catalog.yaml").secrets[name]
    return {name: entry.model_copy(update={"consumers": ["c"]})}


@contextlib.contextmanager
def servers() -> Iterator[tuple[MotoServer, PostgresServer, RedisServer]]:
    """moto, PostgreSQL and Redis on 127.0.0.1 (tests/servers.py)."""
    from tests.servers import moto_server, postgres_server, redis_server

    with moto_server() as moto, postgres_server() as pg, redis_server({}) as redis:
        yield moto, pg, redis
