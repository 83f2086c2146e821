"""Helpers for the day-2 command tests: moto state, captured results, a rotation function."""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from ops.stack import load_stack

LOOPBACK = "127.0.0.1"
STACKS = ("staging", "production")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Moto:
    url: str
    planted: set[str] = field(default_factory=set)
    """Every secret value put into moto (or typed into an environment) during the test."""
    outputs: list[str] = field(default_factory=list)
    """Everything the commands printed during the test."""

    def client(self, service: str, region: str = "ap-southeast-2") -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def value(self, nbytes: int = 32) -> str:
        value = secrets.token_hex(nbytes)
        self.planted.add(value)
        return value

    def seed(self, stack: str, *, versions: int = 1, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
        """Create the stack's catalog secrets with `versions` values each; version ids by full name."""
        info = load_stack(stack)
        sm = self.client("secretsmanager", info.region)
        created: dict[str, list[str]] = {}
        for name, entry in info.secrets.items():
            if name in skip:
                continue
            full = info.full_name(name)

            def render(entry: Any = entry) -> str:
                if not entry.grouped:
                    return self.value()
                return json.dumps({key: self.value(16) for key in entry.values})

            first = sm.create_secret(Name=full, SecretString=render(), Tags=[{"Key": "app", "Value": "filot"}])
            created[full] = [first["VersionId"]]
            for _ in range(versions - 1):
                put = sm.put_secret_value(SecretId=full, SecretString=render(), VersionStages=["AWSCURRENT"])
                created[full].append(put["VersionId"])
        return created

    def stages(self, full: str, region: str = "ap-southeast-2") -> dict[str, str]:
        described = self.client("secretsmanager", region).describe_secret(SecretId=full)
        return {label: version for version, labels in described["VersionIdsToStages"].items() for label in labels}

    def current_value(self, full: str, region: str = "ap-southeast-2") -> str:
        sm = self.client("secretsmanager", region)
        return str(sm.get_secret_value(SecretId=full, VersionStage="AWSCURRENT")["SecretString"])

    def clear(self) -> None:
        for region in ("ap-southeast-2", "ap-southeast-1"):
            sm = self.client("secretsmanager", region)
            for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
                for entry in page["SecretList"]:
                    if entry["Name"].startswith(("filot/", "shop/")):
                        sm.delete_secret(SecretId=entry["ARN"], ForceDeleteWithoutRecovery=True)


@dataclass
class Rotation:
    """A token rotation function deployed in moto; RotateSecret's invokes run `handle` in-process."""

    arn: str
    invocations: list[tuple[str, str]] = field(default_factory=list)


class Terminal(io.StringIO):
    """An interactive stdin on which the operator types `text`."""

    def isatty(self) -> bool:
        return True


def enable_rotation(moto: Moto, rotation: Rotation, full: str, days: int) -> None:
    """Configure rotation on a secret the way `pulumi up` does (this rotates it once, as AWS does)."""
    moto.client("secretsmanager").rotate_secret(
        SecretId=full, RotationLambdaARN=rotation.arn, RotationRules={"AutomaticallyAfterDays": days},
    )
