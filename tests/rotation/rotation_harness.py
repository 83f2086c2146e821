"""Test harness for the rotation Lambda: moto Secrets Manager + Lambda, steps run in-process."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any

from servers import LambdaRouter, MotoServer

from rotation import handler

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class SecretStr(str):
    """A secret string whose repr is masked, so pytest never prints it on a failure."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class SecretDict(dict[str, Any]):
    """A secret's JSON whose repr hides the values, so pytest never prints them on a failure."""

    def __repr__(self) -> str:
        return f"<secret {sorted(self)}>"


def assert_no_secret(text: str, *values: str) -> None:
    """Fail if any secret value occurs in `text`, without ever printing the value."""
    leaked = any(v and v in text for v in values)
    assert not leaked, "a secret value appears in the message"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rotation/__init__.py", "")
    return buffer.getvalue()


class Harness:
    """Secrets Manager + Lambda in moto, rotation functions deployed with their environment."""

    def __init__(self, moto: MotoServer, router: LambdaRouter) -> None:
        self.sm = moto.client("secretsmanager")
        self.lam = moto.client("lambda")
        self.router = router
        iam = moto.client("iam")
        role = iam.create_role(
            RoleName="rotation-lambda",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        self.role_arn = role["Role"]["Arn"]
        self._zip = _zip()
        self.environments: dict[str, dict[str, str]] = {}

    def function(self, strategy: str, secrets_map: Mapping[str, Any], *, paused: bool = False) -> str:
        """Deploy a rotation function for `secrets_map`; paused functions ignore RotateSecret's invokes."""
        environ = {"ROTATION_STRATEGY": strategy, "ROTATION_TARGETS": json.dumps(secrets_map)}
        arn = str(
            self.lam.create_function(
                FunctionName=f"rotate-{uuid.uuid4().hex[:12]}",
                Runtime="python3.12",
                Role=self.role_arn,
                Handler="rotation.handler.lambda_handler",
                Code={"ZipFile": self._zip},
                Environment={"Variables": environ},
            )["FunctionArn"]
        )
        self.environments[arn] = environ
        if paused:
            self.router.paused.add(arn)
        return arn

    def secret(self, name: str, value: str) -> str:
        return str(self.sm.create_secret(Name=name, SecretString=value)["ARN"])

    def rotate(self, secret: str, function_arn: str, token: str | None = None) -> str:
        """RotateSecret (which invokes the four steps unless the function is paused); returns the token."""
        token = token or str(uuid.uuid4())
        self.sm.rotate_secret(
            SecretId=secret,
            ClientRequestToken=token,
            RotationLambdaARN=function_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
        )
        return token

    def step(self, secret: str, step: str, token: str, function_arn: str) -> None:
        """Invoke one step of the handler directly, with the function's environment."""
        event = {"Step": step, "SecretId": secret, "ClientRequestToken": token}
        handler.handle(event, self.environments[function_arn], self.sm)

    def value(self, secret: str, stage: str = "AWSCURRENT") -> SecretStr:
        # Always pass VersionStage: moto's stage-less read lags after a rotation.
        return SecretStr(self.sm.get_secret_value(SecretId=secret, VersionStage=stage)["SecretString"])

    def json(self, secret: str, stage: str = "AWSCURRENT") -> SecretDict:
        return SecretDict(json.loads(self.value(secret, stage)))

    def stages(self, secret: str) -> dict[str, list[str]]:
        versions: dict[str, list[str]] = self.sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        return versions

    def version_of(self, secret: str, stage: str) -> str | None:
        return next((v for v, s in self.stages(secret).items() if stage in s), None)
