"""A stack's life on moto: the program's Secrets Manager resources applied by the test engine, on a clock, with
the real rotation handler behind moto's Lambda (used by tests/life and bench/life.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from components.names import PROGRAM_VALUE_LABEL
from preview.model import CollectedResource
from preview.runtime import ProgramRun
from preview.stackconfig import load_stack_config
from tests.conftest import REPO, run_stack
from tests.life.aws import AwsOverTime, Clock, aws_over_time
from tests.life.engine import ROTATION, SECRET, VERSION, Engine
from tests.servers import MotoServer, lambda_invokes_routed, moto_rotates_empty_secrets

FUNCTION = "aws:lambda/function:Function"
START = 1_780_000_000.0
"""The clock's start (2026-05-28): any fixed time; moto stamps versions with it."""

Variant = Literal["labelled", "before"]
"""`labelled`: the program as it is. `before`: the versions as the program registered them before they had a
label of their own (no version_stages, no ignore_changes on it, no delete_before_replace)."""


def as_before(resources: list[CollectedResource]) -> list[CollectedResource]:
    """The same resources as the program registered them before the label (see `Variant`)."""
    out = []
    for r in resources:
        if r.type == VERSION:
            inputs = {k: v for k, v in r.inputs.items() if k != "versionStages"}
            r = dataclasses.replace(r, inputs=inputs, delete_before_replace=False,
                                    ignore_changes=tuple(p for p in r.ignore_changes if p != "versionStages"))
        out.append(r)
    return out


def program_run(app: str, stack: str = "staging") -> ProgramRun:
    """One offline run of the program with an example's stack file (its values made at run time)."""
    return run_stack(stack, REPO, REPO / "examples" / app / f"Pulumi.{stack}.yaml").run


def token_rotated(run: ProgramRun, strategies: tuple[str, ...] = ("token",)) -> list[CollectedResource]:
    """The Secret, SecretVersion and SecretRotation of every secret the token strategy (or `strategies`) rotates and
    the program writes a first value for."""
    secrets = {r.urn for r in run.resources
               if r.type == SECRET and (r.inputs.get("tags") or {}).get("rotation-strategy") in strategies}
    versions = [r for r in run.resources if r.type == VERSION
                and set(r.property_dependencies.get("secretId", ())) & secrets]
    owners = {s for v in versions for s in v.property_dependencies["secretId"]}
    return [r for r in run.resources
            if (r.type == SECRET and r.urn in owners) or r in versions
            or (r.type == ROTATION and set(r.property_dependencies.get("secretId", ())) & owners)]


@dataclass
class Life:
    """One stack on moto: its engine, AWS's clock and the rotation functions."""

    engine: Engine
    aws: AwsOverTime
    clock: Clock
    sm: Any
    resources: list[CollectedResource]
    region: str

    def secret_arns(self) -> list[str]:
        return sorted(e.id for e in self.engine.state.values() if e.type == SECRET)

    def current(self, arn: str) -> str:
        return str(self.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])

    def value_of(self, arn: str, version_id: str) -> str:
        return str(self.sm.get_secret_value(SecretId=arn, VersionId=version_id)["SecretString"])

    def stages(self, arn: str) -> dict[str, list[str]]:
        listing = self.sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in listing}

    def labelled(self, arn: str) -> list[str]:
        """The versions that carry the program's label (AWS allows one at a time)."""
        return [v for v, s in self.stages(arn).items() if PROGRAM_VALUE_LABEL in s]

    def rotate(self, arn: str) -> None:
        """A scheduled rotation: RotateSecret with the configured function, which runs all four steps."""
        self.sm.rotate_secret(SecretId=arn)


@contextlib.contextmanager
def world(moto: MotoServer) -> Iterator[Callable[..., Life]]:
    """`make(app, variant, only=None, strategies=("token",))`: the token-rotated secrets (or the one named `only`) of
    an example's staging stack, deployed by nothing yet; the rotation function the program declares for them is
    created in moto with the program's own environment, and its invocations run rotation/handler.py in-process."""
    from rotation import handler

    clients: dict[str, Any] = {}
    made: list[Life] = []
    functions: list[tuple[Any, str]] = []

    def run(event: dict[str, Any], environ: Mapping[str, str]) -> None:
        handler.handle(event, environ, clients["sm"])

    with moto_rotates_empty_secrets(), lambda_invokes_routed(run) as router, \
            aws_over_time(Clock(START)) as aws:

        def make(app: str, variant: Variant = "labelled", only: str | None = None,
                 strategies: tuple[str, ...] = ("token",)) -> Life:
            program = program_run(app)
            chosen = [r for r in token_rotated(program, strategies) if only is None or f"-{only}-" in r.name]
            if variant == "before":
                chosen = as_before(chosen)
            region = load_stack_config(REPO, "staging", REPO / "examples" / app / "Pulumi.staging.yaml"
                                       ).values.get("aws:region", "us-east-1")
            sm = _regional(moto, "secretsmanager", region)
            clients["sm"] = sm
            # The key is not applied here (moto would accept any id): the secrets use the account's default key.
            externals: dict[str, str | None] = {r.inputs["kmsKeyId"]: None for r in chosen
                                                if r.type == SECRET and r.inputs.get("kmsKeyId")}
            lam = _regional(moto, "lambda", region)
            role = _role(moto)
            for rotation in (r for r in chosen if r.type == ROTATION):
                mock_arn = rotation.inputs["rotationLambdaArn"]
                if mock_arn in externals:
                    continue
                function = next(r for r in program.resources if r.type == FUNCTION
                                and mock_arn.endswith(f":function:{r.inputs['name']}"))
                created = lam.create_function(
                    FunctionName=function.inputs["name"], Runtime="python3.12", Role=role,
                    Handler="rotation.handler.lambda_handler", Code={"ZipFile": _zip()},
                    Environment={"Variables": dict(function.inputs["environment"]["variables"])})
                externals[mock_arn] = created["FunctionArn"]
                functions.append((lam, created["FunctionName"]))
            engine = Engine(sm, externals)
            made.append(Life(engine, aws, aws.clock, sm, chosen, region))
            return made[-1]

        try:
            yield make
        finally:
            # moto's backends are per process: what this test made goes, and nothing of other tests' servers.
            for done in made:
                for arn in {rid.split("|")[0] for rid in done.engine.created}:
                    with contextlib.suppress(ClientError):
                        done.sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
            for lam, function in functions:
                lam.delete_function(FunctionName=function)
        assert not [c for c in router.calls if c.error], [repr(c.error) for c in router.calls if c.error]


def _regional(moto: MotoServer, service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _role(moto: MotoServer) -> str:
    iam = moto.client("iam")
    name = "life-rotation"
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "lambda.amazonaws.com"}}]}
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"])


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rotation/__init__.py", "")
    return buffer.getvalue()

