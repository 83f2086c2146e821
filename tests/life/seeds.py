"""Each example catalog's staging stack (examples/<app>) through a span of its life on moto: every Secret,
SecretVersion and SecretRotation the program declares, applied by the test engine (tests/life/engine.py), each
rotation on its schedule run by rotation/handler.py's real steps, AWS's removal of old versions and a refresh every
day, a preview then a `pulumi up` every 7th day. Counted: rotations per strategy, values put back by an `up`
(AWSCURRENT moved by a deploy after a rotation had moved it), changes the previews showed (goal 0 for both).

The example stacks name servers that do not exist here (`db.internal`, ElastiCache endpoints): their PostgreSQL and
Redis credentials rotate WITHOUT SERVER LOGINS. createSecret and the label moves of finishSecret run as written; the
strategy's setSecret, testSecret and the retiring of the old password (finish) are skipped, and `without_logins`
names how many secrets of which strategies ran so (tests/life/year.py runs those strategies against real servers).
The example stack files leave the third-party values and the masters' passwords unset (the preview lists them as
"action required", and the program then writes no value and schedules no rotation for what needs them). Here every
value the stack could set with `pulumi config set --secret` is supplied: a copy of the stack file gets a `secure:`
entry of a ciphertext made at run time for each, which the offline run replaces by a stand-in value
(preview/cli.py `offline_stand_ins`), as it does for the entries a stack file already has. Values put out of band
(`ops put`) and optional plain values stay unset.
"""

from __future__ import annotations

import contextlib
import random
import secrets as secrets_module
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from bench.life import period_seconds
from preview.model import plain
from preview.runtime import ProgramRun
from preview.stackconfig import load_stack_config
from tests.conftest import REPO, run_stack
from tests.life.aws import Clock, aws_over_time, rotation_schedules
from tests.life.engine import ROTATION, SECRET, VERSION, Engine
from tests.life.world import FUNCTION, START, _regional, _role, _zip
from tests.life.year import _refresh_only
from tests.servers import MotoServer, lambda_invokes_routed, moto_rotates_empty_secrets

DAY = 86400
SERVER_STRATEGIES = frozenset({"postgres-single-user", "postgres-alternating-users", "redis-acl"})
"""Strategies whose setSecret and testSecret log in to a server (and Redis's finish retires a password there)."""


@dataclass
class Span:
    """What one example's stack went through."""

    app: str
    days: int
    seed: int
    resources: int = 0
    secrets: int = 0
    rotations: dict[str, int] = field(default_factory=dict)
    """Per strategy: scheduled rotations that completed (first installs at the deploy not counted)."""
    failed_rotations: list[str] = field(default_factory=list)
    values_put_back: int = 0
    preview_changes: int = 0
    without_logins: dict[str, int] = field(default_factory=dict)
    """Per server strategy: secrets rotated without logging in to their server (none is configured here)."""
    not_rotated: list[str] = field(default_factory=list)
    """SecretRotations not played: AWS-managed ones (no rotation function: the secret RDS made for a master user, a
    partner's managed external secret), or a cron schedule (no fixed period)."""
    supplied: list[str] = field(default_factory=list)
    """Config keys given a stand-in value at run time (see the module docstring)."""
    rotate_every_days: float | None = None
    """The schedule used instead of the catalog's, to see rotations within a short span (None: the catalog's)."""
    stack: str = "staging"
    seconds: float = 0.0


def _without_logins(strategy: Any) -> Any:
    """The strategy with its server work skipped: no login, no password installed or retired."""
    def nothing(*_: Any) -> None:
        return None

    strategy.set = strategy.test = strategy.finish = nothing
    strategy.retires = False
    return strategy


def supplied_run(app: str, stack: str, directory: Path) -> tuple[ProgramRun, list[str]]:
    """One offline run of the example's stack with every value `pulumi config set --secret` could give supplied
    (a `secure:` entry of a ciphertext made now), and the config keys so given."""
    source = REPO / "examples" / app / f"Pulumi.{stack}.yaml"
    first = run_stack(stack, REPO, source).run
    gaps = [g for g in plain(first.outputs.get("actionRequired") or [])
            if " --secret " in g["command"] and "ops put" not in g["command"]]
    if not gaps:
        return first, []
    document = yaml.safe_load(source.read_text()) or {}
    config = document.setdefault("config", {})
    for gap in gaps:
        config[f"secrets-platform:{gap['configKey']}"] = {"secure": f"v1:{secrets_module.token_urlsafe(32)}"}
    copy = directory / f"Pulumi.{stack}.yaml"
    copy.touch(mode=0o600)
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return run_stack(stack, REPO, copy).run, sorted(g["configKey"] for g in gaps)


def seed_span(moto: MotoServer, app: str, days: int, seed: int, *, stack_name: str = "staging",
              rotate_every_days: float | None = None) -> Span:
    """`days` days of examples/<app>'s stack (see the module docstring); every rotated secret rotated every
    `rotate_every_days` days instead of on the catalog's schedule when given."""
    from rotation import handler
    from rotation.protocol import rotate

    began = time.monotonic()
    rng = random.Random(seed)
    span = Span(app=app, days=days, seed=seed, rotate_every_days=rotate_every_days, stack=stack_name)
    with tempfile.TemporaryDirectory(prefix="seed-") as directory:
        program, span.supplied = supplied_run(app, stack_name, Path(directory))
    declared = [r for r in program.resources if r.type in (SECRET, VERSION, ROTATION) and r.custom]
    owned = {r.urn for r in declared if r.type == SECRET}
    # A rotation without a function is AWS-managed (the secret's owner, RDS or a partner, makes the values): not
    # played, nor one of a secret the stack does not own.
    resources = [r for r in declared if r.type != ROTATION or (
        set(r.property_dependencies.get("secretId", ())) & owned and r.inputs.get("rotationLambdaArn"))]
    span.not_rotated += [str(r.inputs.get("secretId")).split(":secret:")[-1] for r in declared if r not in resources]
    span.resources = len(resources)
    config = load_stack_config(REPO, stack_name, REPO / "examples" / app / f"Pulumi.{stack_name}.yaml")
    region = str(config.values.get("aws:region", "us-east-1"))
    sm = _regional(moto, "secretsmanager", region)
    lam = _regional(moto, "lambda", region)
    strategy_of = {r.inputs["name"]: (r.inputs.get("tags") or {}).get("rotation-strategy")
                   for r in resources if r.type == SECRET}
    span.secrets = len(strategy_of)
    externals: dict[str, str | None] = {r.inputs["kmsKeyId"]: None for r in resources
                                        if r.type == SECRET and r.inputs.get("kmsKeyId")}

    def run(event: dict[str, Any], environ: Mapping[str, str]) -> None:
        deployment = handler.load_deployment(environ)
        for strategy in deployment.values():
            if strategy.name in SERVER_STRATEGIES:
                _without_logins(strategy)
        rotate(event, sm, deployment)

    with contextlib.ExitStack() as stack:
        stack.enter_context(moto_rotates_empty_secrets())
        router = stack.enter_context(lambda_invokes_routed(run))
        aws = stack.enter_context(aws_over_time(Clock(START)))
        stack.enter_context(rotation_schedules())  # the examples' windows give a ScheduleExpression
        clock = aws.clock
        role = _role(moto)
        wanted = {str(r.inputs.get("rotationLambdaArn")) for r in resources if r.type == ROTATION}
        for function in (r for r in program.resources if r.type == FUNCTION):
            arn = next((a for a in wanted if a.endswith(f":function:{function.inputs['name']}")), None)
            if arn is None:
                continue
            created = lam.create_function(
                FunctionName=function.inputs["name"], Runtime="python3.12", Role=role,
                Handler="rotation.handler.lambda_handler", Code={"ZipFile": _zip()},
                Environment={"Variables": dict(function.inputs["environment"]["variables"])})
            externals[arn] = created["FunctionArn"]
            stack.callback(lam.delete_function, FunctionName=created["FunctionName"])
        engine = Engine(sm, externals)

        def cleanup() -> None:
            for arn in {rid.split("|")[0] for rid in engine.created}:
                with contextlib.suppress(ClientError):
                    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)

        stack.callback(cleanup)
        engine.up(resources)
        name_of_urn = {e.urn: sm.describe_secret(SecretId=e.id)["Name"] for e in engine.state.values()
                       if e.type == SECRET}
        arn_of = {name_of_urn[e.urn]: e.id for e in engine.state.values() if e.type == SECRET}
        versions = {name_of_urn[r.property_dependencies["secretId"][0]]: r.urn for r in resources
                    if r.type == VERSION and r.property_dependencies.get("secretId")}
        due: dict[str, float] = {}
        period: dict[str, float] = {}
        for record in (r for r in resources if r.type == ROTATION):
            name = name_of_urn[record.property_dependencies["secretId"][0]]
            seconds = (rotate_every_days * DAY if rotate_every_days
                       else period_seconds(record.inputs.get("rotationRules") or {}))
            if seconds is None:
                span.not_rotated.append(name)
                continue
            period[name] = seconds
            due[name] = clock.now + seconds + rng.uniform(0, DAY)
            if not strategy_of.get(name):  # untagged: the strategy its rotation function was built for
                strategy_of[name] = next((f.inputs["environment"]["variables"].get("ROTATION_STRATEGY")
                                          for f in program.resources if f.type == FUNCTION and str(
                                              record.inputs.get("rotationLambdaArn")).endswith(
                                              f":function:{f.inputs['name']}")), None)
            if strategy_of.get(name) in SERVER_STRATEGIES:
                span.without_logins[str(strategy_of[name])] = span.without_logins.get(str(strategy_of[name]), 0) + 1
        span.failed_rotations += [f"deploy: {c.event.get('SecretId')} {c.event['Step']}: {type(c.error).__name__}"
                                  for c in router.calls if c.error]

        touched: set[str] = set()

        def current(name: str) -> str:
            stages = sm.describe_secret(SecretId=arn_of[name])["VersionIdsToStages"]
            return next(v for v, s in stages.items() if "AWSCURRENT" in s)

        for day in range(1, days + 1):
            end = START + day * DAY
            while due and min(due.values()) <= end:
                name = min(due, key=due.__getitem__)
                clock.now = max(clock.now, due[name])
                due[name] += period[name]
                calls = len(router.calls)
                sm.rotate_secret(SecretId=arn_of[name])
                errors = [c for c in router.calls[calls:] if c.error]
                touched.add(name)
                if errors:
                    span.failed_rotations += [f"day {day}: {name} {c.event['Step']}: {type(c.error).__name__}"
                                              for c in errors]
                else:
                    key = str(strategy_of.get(name))
                    span.rotations[key] = span.rotations.get(key, 0) + 1
            clock.now = end
            if aws.remove_old_versions():
                touched.update(versions)
            # Daily, what AWS can have changed: the versions of the secrets rotated that day (tests/life/year.py);
            # everything before each weekly deploy.
            _refresh_only(engine, {versions[n] for n in touched if n in versions})
            touched.clear()
            if day % 7 == 0:
                engine.refresh()
                span.preview_changes += len(engine.up(resources, dry_run=True))
                before = {n: current(n) for n in versions}
                steps = engine.up(resources)
                written = {s.urn for s in steps if s.op in ("create", "replace")}
                span.values_put_back += sum(urn in written and current(n) != before[n] for n, urn in versions.items())
    span.seconds = round(time.monotonic() - began, 1)
    return span
