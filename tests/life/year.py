"""A simulated year of a stack of server credentials, against real servers: what `make life` measures and
tests/life/test_year.py runs for a few weeks.

The stack is bench/generate.py's `server_catalog(size)`: PostgreSQL single-user and alternating-users
credentials and Redis ACL users of a real PostgreSQL and a real Redis server on 127.0.0.1 (tests/servers.py),
and tokens. The program runs once offline (preview/runtime.py); the test engine (tests/life/engine.py) applies
its Secret, SecretVersion and SecretRotation resources to moto, with moto's clock and AWS's version removal
(tests/life/aws.py); each rotation runs rotation/handler.py's real four steps against the real servers.

On the clock: rotations on each secret's own schedule (at a random minute of the day it falls due); every day
AWS's removal of old versions and a refresh of what AWS can have changed that day (below); every 7th day a full
`pulumi refresh`, a preview, then a `pulumi up`; at fixed points two incident rotations (`ops rotate`), a rollback
(`ops rollback`, of a token: the credential strategies refuse one; like the command, it restarts the secret's
at-start consumers itself), a rotation that fails at setSecret (the server unreachable) and its clean-up the next
day (`ops clear-pending`, then `ops rotate`); and three catalog edits, each applied by a weekly deploy of the
program run again on the edited catalog: a secret added (its first install runs at that deploy), one removed
(DeleteSecret with the recovery window), a schedule changed (the provider's update sends RotateSecret, which
rotates at once). After each deploy a second preview must show nothing: its changes are `preview_changes`.

The daily refresh is partial, and says so: a full refresh reads every resource back (one DescribeSecret or
GetSecretValue each: about 600 requests for 200 secrets, 5-20 s on this shared machine, mostly moto's server
answering one HTTP request per read, see bench/README.md), which 365 times is most of the year's time. Within a
day, what AWS can change in the state is the labels of the SecretVersions of the secrets whose labels moved (a
rotation, a failed one, an `ops` command) and the versions AWS removed; the daily refresh reads those SecretVersions
and nothing else. Secrets and SecretRotations change only by a deploy or a command the year itself runs. Before
every weekly deploy the full refresh runs, and what it finds changed that the daily ones had not already read is
counted (`refresh_missed`, goal 0).

Consumers (tests/life/consumer.py) are real processes holding the values of a few watched secrets per
strategy, one of each kind: `ecs` reads at start and is restarted 10 minutes after a rotation of its secret
plus the deployment (at most the 15 minutes docs/consumers.md allows; the restart function itself is tested in
tests/test_consumer_restarts.py, not here), `lambda-cold-start` reads once per execution environment of a moto
Lambda function of its own, which rotation/consumers.py's Restarter (the restart function's code) gives a new
configuration 10 minutes after a rotation (docs/aws-contract.md, "Lambda consumers start again"), `cached-1h`
(the AWS caching client's default TTL), `cached-5min` (a common shorter cache) and `request` (reads before every
use). They log in at every check: every 6 hours, and 1 s, 4 min, 15 min, 27 min and 62 min after each rotation
of a watched secret. Whether the program accepts a
(strategy, kind) pair in production is components/consumers.py's `check(..., production=True)` (the first hazard
it raises is the reason shown); the goal is no failed login for any accepted pair.

Not emulated: the EventBridge rule and queue between a rotation and a restart (the restart happens at the
documented bound); a Lambda invocation still running in an old environment (up to 900 s); environments Lambda
recycles on its own; rotations overlapping in time (each RotateSecret runs its four steps to the end before the
clock moves); replicas.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import heapq
import io
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.generate import LIFE_STACK, Server, _camel, life_secret, server_catalog, server_stack_config
from components import consumers as consumer_rules
from components.consumers import (
    ECS_DEPLOYMENT_SECONDS,
    RESTART_WINDOW_SECONDS,
    Consumption,
    EcsService,
    LambdaColdStart,
    RuntimeRead,
    check,
)
from components.errors import ConfigurationError
from preview.model import CollectedResource, plain
from tests.conftest import REPO, run_stack
from tests.life.aws import Clock, aws_over_time, lambda_on_clock
from tests.life.engine import ROTATION, SECRET, VERSION, Engine, Step
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
    "lambda-cold-start": Kind("cold-start", 0, LambdaColdStart(function="life-consumer")),
    "cached-1h": Kind("cached", 3600, RuntimeRead(cache_ttl_seconds=3600)),
    "cached-5min": Kind("cached", 300, RuntimeRead(cache_ttl_seconds=300)),
    "request": Kind("request", 0, RuntimeRead(cache_ttl_seconds=0)),
}


@dataclass
class Tally:
    """One (strategy, consumer kind) pair's counts."""

    accepted: bool
    """Whether production accepts this consumer kind for this strategy (components/consumers.py `check`)."""
    refused_because: str = ""
    """Why production refuses it: the hazard's message."""
    logins: int = 0
    failed: int = 0
    """Logins refused by the server (goal: 0 wherever `accepted`)."""
    failed_beyond_tolerance: int = 0
    """Failed logins later after the secret's last change than components/consumers.py's TOLERATED_SECONDS
    (read when the year runs)."""
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
    """Changes the weekly preview showed after rotations, and a preview right after each catalog edit's deploy
    (goal 0)."""
    edits: list[dict[str, Any]] = field(default_factory=list)
    """The catalog edits: day, what, the deploy's steps, values put back and preview changes after it."""
    versions_max: int = 0
    versions_mean: float = 0.0
    versions_removed_by_aws: int = 0
    refresh_every_days: int = 7
    """A full refresh every N days (and before every weekly deploy)."""
    daily_refresh: str = ("the SecretVersions of the secrets whose labels moved that day or lost versions to AWS; "
                          "the full refresh before each weekly deploy")
    refreshed_daily: int = 0
    """Resources the daily (partial) refreshes read, all days together."""
    refreshed_full: int = 0
    refresh_missed: int = 0
    """Resources a full refresh found changed that the daily refreshes had not read (goal 0)."""
    refresh_missed_what: list[str] = field(default_factory=list)
    """Day, resource and the properties that differed, for the first 20 of them."""
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

    def __init__(self, kind: str, arns: list[str], endpoint: str, region: str, function: str = "") -> None:
        spec = KINDS[kind]
        self.kind, self.arns = kind, arns
        self._args = [sys.executable, "-m", "tests.life.consumer", "--kind", spec.process, "--ttl", str(spec.ttl),
                      *(["--function", function] if function else []), "--endpoint", endpoint, "--region", region,
                      *arns]
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
             seed: int, watched: int = 1, every_days: tuple[int, ...] = (30, 60, 90), refresh_every: int = 7,
             check_every: float = CHECK_EVERY, checks_after: tuple[float, ...] = CHECKS_AFTER_ROTATION,
             say: Callable[[str], None] = lambda _: None) -> YearResult:
    """The year (or `days` days) of `server_catalog(size)`, `watched` secrets per strategy with consumers, the
    daily refresh of what AWS changed, a full refresh every `refresh_every` days (and before every weekly `up`),
    the consumers' routine checks every `check_every` seconds and `checks_after` each rotation of a watched
    secret."""
    from ops.secrets import clear_pending, rollback, rotate
    from ops.stack import load_stack
    from rotation import handler
    from rotation.consumers import Restarter

    began = time.monotonic()
    rng = random.Random(seed)
    postgres: Server = (LOOPBACK, pg.port, pg.superuser)
    redis_server: Server = (LOOPBACK, redis.port, "admin")
    catalog = server_catalog(size, every_days)
    project = _write_project(workdir, catalog, postgres, redis_server)
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
        stack.enter_context(lambda_on_clock(clock))
        secret_names: dict[str, str] = {}
        strategy_of: dict[str, str | None] = {}
        externals: dict[str, str | None] = {}
        role = _role(moto)
        functions: set[str] = set()

        def learn(run: Any) -> list[CollectedResource]:
            """The run's Secrets Manager resources; its names, strategies, key and rotation functions known (the
            functions created in moto, or given the run's environment as `pulumi up` would)."""
            chosen = [r for r in run.resources if r.type in (SECRET, VERSION, ROTATION)]
            secret_names.update({r.urn: r.inputs["name"] for r in chosen if r.type == SECRET})
            strategy_of.update({r.inputs["name"]: _strategy(r) for r in chosen if r.type == SECRET})
            externals.update({r.inputs["kmsKeyId"]: None for r in chosen
                              if r.type == SECRET and r.inputs.get("kmsKeyId")})
            for function in (r for r in run.resources if r.type == FUNCTION):
                name, variables = function.inputs["name"], dict(function.inputs["environment"]["variables"])
                if name in functions:
                    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
                    continue
                created = lam.create_function(
                    FunctionName=name, Runtime="python3.12", Role=role, Handler="rotation.handler.lambda_handler",
                    Code={"ZipFile": _zip()}, Environment={"Variables": variables})
                functions.add(name)
                externals[f"arn:aws:lambda:{region}:123456789012:function:{name}"] = created["FunctionArn"]
                stack.callback(lam.delete_function, FunctionName=created["FunctionName"])
            return chosen

        chosen = learn(program)
        engine = Engine(sm, externals)
        stack.callback(_delete_all, sm, engine)
        master_names = {f"lifeapp/{LIFE_STACK}/{m}" for m in passwords}

        def of_secret(records: list[CollectedResource], names: set[str]) -> list[CollectedResource]:
            return [r for r in records if secret_names.get(r.urn) in names or any(
                secret_names.get(d) in names for d in r.property_dependencies.get("secretId", ()))]

        def applied(records: list[CollectedResource]) -> list[CollectedResource]:
            """What `pulumi up` applies of one run: the masters' versions with the servers' real passwords (what
            it decrypts from the `secure:` entries), the masters' ARNs in the credentials' first values those moto
            gave them (the masters deployed first)."""
            masters = []
            for record in of_secret(records, master_names):
                if record.type == VERSION:
                    owner = secret_names[record.property_dependencies["secretId"][0]].rsplit("/", 1)[1]
                    value = json.loads(plain(record.inputs["secretString"]))
                    value["password"] = passwords[owner]
                    record = dataclasses.replace(record, inputs={**record.inputs, "secretString": json.dumps(value)})
                masters.append(record)
            if not any(e.type == SECRET and secret_names.get(e.urn) in master_names for e in engine.state.values()):
                engine.up(masters)
            mock_arn = {secret_names[r.property_dependencies["secretId"][0]]: str(plain(r.inputs["secretId"]))
                        for r in masters if r.type == VERSION}
            real_arn = {secret_names[e.urn]: e.id for e in engine.state.values() if e.type == SECRET}
            out = list(masters)
            urns = {r.urn for r in masters}
            for record in records:
                if record.urn in urns:
                    continue
                if record.type == VERSION:
                    text = str(plain(record.inputs["secretString"]))
                    for name, arn in mock_arn.items():
                        text = text.replace(arn, real_arn[name])
                    record = dataclasses.replace(record, inputs={**record.inputs, "secretString": text})
                out.append(record)
            return out

        resources = applied(chosen)
        say(f"deploy: {len(resources)} resources")
        engine.up(resources)  # the server credentials' first installs run now (RotateImmediately)
        failed = [(c.event["Step"], type(c.error).__name__) for c in router.calls if c.error]
        assert not failed, f"first installs failed: {failed}"
        arn_of: dict[str, str] = {}
        name_of: dict[str, str] = {}
        version_urn: dict[str, str] = {}

        def index(records: list[CollectedResource]) -> None:
            arn_of.clear()
            arn_of.update({secret_names[e.urn]: e.id for e in engine.state.values() if e.type == SECRET})
            name_of.clear()
            name_of.update({a: n for n, a in arn_of.items()})
            name_by_arn.update(name_of)
            version_urn.clear()
            version_urn.update({secret_names[r.property_dependencies["secretId"][0]]: r.urn
                                for r in records if r.type == VERSION})

        index(resources)

        # Schedules, and the watched secrets with their consumers.
        due: list[tuple[float, int, str, str]] = []
        period: dict[str, float] = {}
        next_due: dict[str, float] = {}
        order = 0

        def push(at: float, what: str, arg: str = "") -> None:
            nonlocal order
            order += 1
            heapq.heappush(due, (at, order, what, arg))

        def schedule(name: str, at: float) -> None:
            next_due[name] = at
            push(at, "rotate", name)

        def rotation_periods(records: list[CollectedResource]) -> dict[str, float]:
            return {secret_names[r.property_dependencies["secretId"][0]]: _period(r.inputs["rotationRules"])
                    for r in records if r.type == ROTATION}

        period.update(rotation_periods(resources))
        for name in sorted(period):
            schedule(name, clock.now + period[name] + rng.uniform(0, DAY))
        by_strategy: dict[str, list[str]] = {}
        for name in sorted(period):
            by_strategy.setdefault(str(strategy_of[name]), []).append(name)
        watch = {n for names in by_strategy.values() for n in names[:watched]}
        endpoint = moto.endpoint_url
        shared = {kind: Consumer(kind, [arn_of[n] for n in sorted(watch)], endpoint, region)
                  for kind, spec in KINDS.items() if spec.process not in ("start", "cold-start")}
        ecs = {n: Consumer("ecs", [arn_of[n]], endpoint, region) for n in sorted(watch)}
        function_of = {n: f"life-consumer-{i}" for i, n in enumerate(sorted(watch))}
        for function_name in function_of.values():
            lam.create_function(FunctionName=function_name, Runtime="python3.12", Role=role, Handler="app.handler",
                                Code={"ZipFile": _zip()}, Environment={"Variables": {"APP": "life"}})
            stack.callback(lam.delete_function, FunctionName=function_name)
        lambdas = {n: Consumer("lambda-cold-start", [arn_of[n]], endpoint, region, function=function_of[n])
                   for n in sorted(watch)}
        for consumer in [*shared.values(), *ecs.values(), *lambdas.values()]:
            stack.callback(consumer.stop)
        restarter = Restarter(None, lam, now=lambda: dt.datetime.fromtimestamp(clock.now, dt.UTC))
        tallies: dict[str, dict[str, Tally]] = {}
        for strategy, names in by_strategy.items():
            tallies[strategy] = {}
            for kind, spec in KINDS.items():
                accepted, reason = production_accepts(project, names[0], spec.declared)
                tallies[strategy][kind] = Tally(accepted=accepted, refused_because=reason)
        result.consumers = tallies
        last_rotated: dict[str, float] = {n: clock.now for n in period}
        restart_pending: set[str] = set()
        lambda_pending: set[str] = set()
        # The rule as components/consumers.py has it when the year runs (a missing constant: no tolerance).
        tolerated = float(getattr(consumer_rules, "TOLERATED_SECONDS", 0))
        touched: set[str] = set(period)
        """Secrets whose labels moved since the last refresh (what the daily refresh reads): at first, those whose
        SecretRotation the deploy created after reading their version back (a first install moves the labels)."""

        def check() -> None:
            answers: list[tuple[str, dict[str, bool]]] = [(k, c.check(clock.now)) for k, c in shared.items()]
            answers += [("ecs", c.check(clock.now)) for c in ecs.values()]
            answers += [("lambda-cold-start", c.check(clock.now)) for c in lambdas.values()]
            for kind, answer in answers:
                for arn, ok in answer.items():
                    tally = tallies[str(strategy_of[name_of[arn]])][kind]
                    tally.logins += 1
                    tally.failed += not ok
                    tally.failed_beyond_tolerance += not ok and clock.now - last_rotated[name_of[arn]] > tolerated

        def follow(name: str) -> None:
            """The checks after a change of a watched secret's value."""
            for after in checks_after:
                push(clock.now + after, "check")

        def rotated(name: str) -> None:
            last_rotated[name] = clock.now
            # botocore's Secrets Manager model, RotationRulesType.AutomaticallyAfterDays: "Secrets Manager calculates
            # the next rotation date based on the previous rotation" (an `ops rotate` too).
            if name in period and next_due.get(name) != clock.now + period[name]:
                schedule(name, clock.now + period[name])
            touched.add(name)
            result.rotations[str(strategy_of[name])] = result.rotations.get(str(strategy_of[name]), 0) + 1
            if name in watch:
                follow(name)
                if name not in restart_pending:  # several rotations within the window: one restart
                    restart_pending.add(name)
                    push(clock.now + RESTART_WINDOW_SECONDS + rng.uniform(60, ECS_DEPLOYMENT_SECONDS), "restart", name)
                if name not in lambda_pending:
                    lambda_pending.add(name)
                    push(clock.now + RESTART_WINDOW_SECONDS, "restart-lambda", name)

        def restart_lambda(name: str, changed_at: float) -> None:
            if restarter.function(function_of[name], dt.datetime.fromtimestamp(changed_at, dt.UTC)):
                tallies[str(strategy_of[name])]["lambda-cold-start"].restarts += 1

        def current_version(name: str) -> str:
            stages = sm.describe_secret(SecretId=arn_of[name])["VersionIdsToStages"]
            return next(v for v, s in stages.items() if "AWSCURRENT" in s)

        def refresh_touched() -> None:
            urns = {version_urn[n] for n in touched if n in version_urn}
            touched.clear()
            result.refreshed_daily += _refresh_only(engine, urns)

        def refresh_all() -> None:
            before = {urn: copy.deepcopy(e.outputs) for urn, e in engine.state.items()}
            engine.refresh()
            result.refreshed_full += len(before)
            for urn, outputs in before.items():
                now = engine.state[urn].outputs if urn in engine.state else {}
                if now != outputs:
                    result.refresh_missed += 1
                    if len(result.refresh_missed_what) < 20:
                        changed = sorted(k for k in {*now, *outputs} if now.get(k) != outputs.get(k))
                        result.refresh_missed_what.append(
                            f"day {(clock.now - START) / DAY:.0f}: {urn.rsplit('::', 1)[-1]}: {', '.join(changed)}")

        def deploy() -> list[Step]:
            """The weekly `pulumi up`; values put back counted, rotations it caused followed."""
            before = {n: current_version(n) for n in version_urn if n in arn_of}
            steps = engine.up(resources)
            written = {s.urn for s in steps if s.op in ("create", "replace")}
            index(resources)
            for name, urn in version_urn.items():
                if urn in written and name in before and current_version(name) != before[name]:
                    result.values_put_back += 1
            for step in steps:
                record = next((r for r in resources if r.urn == step.urn), None)
                if step.op in ("create", "update") and record is not None and record.type == ROTATION:
                    # RotateSecret ran after the version was read back: its labels may have moved (a first install).
                    touched.add(secret_names[record.property_dependencies["secretId"][0]])
                if step.op == "update" and record is not None and record.type == ROTATION:
                    name = secret_names[record.property_dependencies["secretId"][0]]
                    if name in before and current_version(name) != before[name]:  # RotateSecret, immediately
                        rotated(name)
            return steps

        ops_stack = load_stack(LIFE_STACK, project)
        out, err = io.StringIO(), io.StringIO()
        watched_of = {s: sorted(n for n in watch if strategy_of[n] == s) for s in by_strategy}
        incidents = {
            max(1, days // 3): ("ops-rotate", watched_of.get("postgres-single-user", [""])[0]),
            max(2, 2 * days // 3): ("ops-rotate", watched_of.get("redis-acl", [""])[0]),
            max(1, days // 2): ("rollback", watched_of.get("token", [""])[0]),
            max(1, days // 4): ("fail", watched_of.get("postgres-alternating-users", [""])[0]),
        }
        edits = _edit_plan(days, size, sorted(period), watch, watched_of.get("token", [""])[0])
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
                if next_due.get(arg) != at:
                    continue  # removed from the catalog, or rescheduled by a change of its rules
                schedule(arg, clock.now + period[arg])
                if arg in failing:
                    continue  # RotateSecret would be refused: the failed rotation's AWSPENDING is still there
                calls = len(router.calls)
                sm.rotate_secret(SecretId=arn_of[arg])
                if any(c.error for c in router.calls[calls:]):
                    result.failed_rotations += 1
                    failing[arg] = clock.now
                    touched.add(arg)
                    result.events.append(f"day {(clock.now - START) / DAY:.1f}: rotation of {arg} failed")
                else:
                    rotated(arg)
            elif what == "check":
                check()
            elif what == "restart":
                restart_pending.discard(arg)
                ecs[arg].restart()
                tallies[str(strategy_of[arg])]["ecs"].restarts += 1
            elif what == "restart-lambda":
                lambda_pending.discard(arg)
                restart_lambda(arg, last_rotated[arg])  # the burst's latest rotation (rotation/consumers.py)
            elif what == "day":
                day = int(arg)
                removed_before = dict(aws.removed_from)
                aws.remove_old_versions()
                touched.update(name_of[a] for a, n in aws.removed_from.items()
                               if n != removed_before.get(a) and a in name_of)
                refresh_touched()
                if day % refresh_every == 0 or day % 7 == 0:
                    refresh_all()
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
                        # As `ops rollback` does (ops/restart.py): the at-start consumers restarted at once.
                        last_rotated[target] = clock.now
                        touched.add(target)
                        follow(target)
                        push(clock.now + rng.uniform(60, ECS_DEPLOYMENT_SECONDS), "restart", target)
                        restart_pending.add(target)
                        restart_lambda(target, clock.now - 1)
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
                    result.preview_changes += len(engine.up(resources, dry_run=True))  # after a week of rotations
                    made = [edit for edit in edits.get(day, []) if _apply_edit(catalog, edit, every_days)]
                    if made:
                        # The program runs again on the edited catalog; the deploy applies the edits.
                        _write_project(workdir, catalog, postgres, redis_server)
                        resources = applied(learn(run_stack(LIFE_STACK, project).run))
                        ops_stack = load_stack(LIFE_STACK, project)
                        put_back, calls = result.values_put_back, len(router.calls)
                        period_now = rotation_periods(resources)
                        period.update({n: s for n, s in period_now.items() if n in period})  # new rules
                        steps = deploy()
                        after = len(engine.up(resources, dry_run=True))
                        result.preview_changes += after
                        for name in sorted(set(period) - set(period_now)):  # removed: AWS rotates it no more
                            del period[name], next_due[name]
                            arn_of.pop(name, None)
                        for name, seconds in sorted(period_now.items()):
                            if name not in period:  # added: its first install ran at the deploy
                                period[name] = seconds
                                last_rotated[name] = clock.now
                                schedule(name, clock.now + seconds + rng.uniform(0, DAY))
                        failed_steps = [(c.event["SecretId"].rsplit("/", 1)[-1], c.event["Step"],
                                         type(c.error).__name__) for c in router.calls[calls:] if c.error]
                        result.edits.append({
                            "day": day, "edits": made, "failedSteps": failed_steps,
                            "steps": sorted(f"{s.op} {s.urn.rsplit('::', 1)[-1]}" for s in steps),
                            "valuesPutBack": result.values_put_back - put_back, "previewChangesAfter": after})
                        result.events.append(f"day {day}: catalog edits {made} deployed: {len(steps)} steps, "
                                             f"then a preview of {after} changes")
                    else:
                        deploy()
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
                touched.add(arg)
                result.events.append(f"day {(clock.now - START) / DAY:.1f}: rotation of {arg} failed at setSecret")
        counts = [len(sm.list_secret_version_ids(SecretId=a, IncludeDeprecated=True)["Versions"])
                  for a in arn_of.values()]
        result.versions_max = max(counts)
        result.versions_mean = round(sum(counts) / len(counts), 1)
        result.versions_removed_by_aws = aws.removed
    result.seconds = round(time.monotonic() - began, 1)
    return result


def _refresh_only(engine: Engine, urns: set[str]) -> int:
    """`pulumi refresh --target` of these resources: the engine's own refresh on the part of its state they are
    (the entries are shared, so what Read sets lands in the stack's state); those AWS no longer has are dropped.
    Returns how many were read."""
    part = Engine(engine.sm, engine.externals, state={u: engine.state[u] for u in urns if u in engine.state})
    for step in part.refresh():
        engine.state.pop(step.urn, None)
        engine.steps.append(step)
    return len(urns)


def production_accepts(project: Path, full_name: str, declared: Consumption) -> tuple[bool, str]:
    """Whether production accepts a consumer of this kind for this secret, and if not why: components/consumers.py
    `check(..., production=True)` on the secret's catalog entry (it raises the first hazard)."""
    try:
        check(_catalog_entry(project, full_name), {"c": declared}, "Pulumi.production.yaml", production=True)
    except ConfigurationError as exc:
        return False, exc.reason
    return True, ""


def _write_project(directory: Path, catalog: dict[str, Any], postgres: Server, redis: Server) -> Path:
    """A project directory holding `catalog` (a `server_catalog`, maybe edited) and its staging stack, with the
    stack config of exactly its secrets."""
    from components.settings import PROJECT

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    (directory / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    indices = [int(n.split("-")[1]) for n in catalog["secrets"] if n.startswith("cred-")]
    config = server_stack_config(max(indices, default=0) + 1, postgres, redis)
    gone = {_camel(life_secret(i), "") for i in range(max(indices, default=0) + 1) if life_secret(i) not in
            catalog["secrets"]}
    config["config"] = {k: v for k, v in config["config"].items()
                        if not any(k.startswith(f"{PROJECT}:{g}") and k[len(PROJECT) + 1 + len(g):][:1].isupper()
                                   for g in gone)}
    stack = directory / f"Pulumi.{LIFE_STACK}.yaml"
    stack.touch(mode=0o600)
    stack.write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


Edit = dict[str, Any]


def _edit_plan(days: int, size: int, names: list[str], watch: set[str], token: str) -> dict[int, list[Edit]]:
    """The catalog edits by deploy day: a secret added (the next index), one removed (the last one nobody
    watches), a schedule changed (the first one nobody watches, else the watched token), on the weekly deploys
    a quarter, half and three quarters through (together when there are few)."""
    weeks = list(range(7, days + 1, 7))
    if not weeks:
        return {}
    free = [n for n in names if n not in watch]
    plan: dict[int, list[Edit]] = {}
    plan.setdefault(weeks[len(weeks) // 4], []).append({"edit": "add", "secret": life_secret(size)})
    if free:
        plan.setdefault(weeks[len(weeks) // 2], []).append({"edit": "remove", "secret": free[-1].rsplit("/", 1)[1]})
    changed = free[0] if len(free) > 1 else token
    if changed:
        plan.setdefault(weeks[3 * len(weeks) // 4], []).append({"edit": "schedule",
                                                                 "secret": changed.rsplit("/", 1)[1]})
    return plan


def _apply_edit(catalog: dict[str, Any], edit: Edit, every_days: tuple[int, ...]) -> bool:
    """Change the catalog as the edit says (True), or leave it when the edit no longer applies."""
    secrets, name = catalog["secrets"], edit["secret"]
    if edit["edit"] == "add":
        index = int(name.split("-")[1])
        entry = server_catalog(index + 1, every_days)["secrets"][name]
        secrets[name] = entry
        catalog["services"].append(entry["consumers"][0])
        edit["every_days"] = entry["rotation"]["every_days"]
        return True
    if name not in secrets:
        return False
    if edit["edit"] == "remove":
        del secrets[name]
        return True
    old = int(secrets[name]["rotation"]["every_days"])
    secrets[name]["rotation"]["every_days"] = edit["every_days"] = max(1, old // 2)
    edit["was"] = old
    return True


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
