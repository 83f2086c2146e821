"""Helpers for the draft and adoption tests: an example's secrets seeded into moto, the draft read back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ops_harness import Moto

from components.catalog import Catalog, load_catalog
from preview.cli import Report, preview

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ("filot", "whatsapp-saas", "tria-aibpo")
SECRET = "aws:secretsmanager/secret:Secret"


@dataclass
class Seeded:
    """An example's stack as it exists in moto before the platform manages it."""

    app: str
    environment: str
    region: str
    prefix: str
    arns: dict[str, str] = field(default_factory=dict)
    """Catalog name -> ARN of the secret created in moto."""
    keys: dict[str, frozenset[str]] = field(default_factory=dict)
    """Grouped catalog secret -> the JSON keys its value has (masterarn left out)."""


def example_config(example: str, stack: str) -> Path:
    return REPO / "examples" / example / f"Pulumi.{stack}.yaml"


def example_catalog(example: str) -> Catalog:
    return load_catalog(REPO / "examples" / example / "catalog.yaml")


def example_region(example: str, stack: str) -> str:
    return str(yaml.safe_load(example_config(example, stack).read_text())["config"]["aws:region"])


def example_preview(example: str, stack: str) -> Report:
    return preview(stack, REPO, example_config(example, stack), policies=False)


def seed_example(moto: Moto, example: str, stack: str, *, skip: tuple[str, ...] = (),
                 with_key: bool = True) -> Seeded:
    """Create the example's secrets of one environment in moto, as a team would have them by hand: the
    catalog's names and JSON keys (and the masterarn the platform adds), a description, tags, a customer
    key for some; values generated now and remembered for the leak check."""
    catalog = example_catalog(example)
    region = example_region(example, stack)
    sm = moto.client("secretsmanager", region)
    key_arn = moto.client("kms", region).create_key(Description="the team's existing key")["KeyMetadata"]["Arn"]
    seeded = Seeded(app=catalog.app, environment=stack, region=region, prefix=f"{catalog.app}/{stack}/")
    for name, entry in catalog.for_environment(stack).items():
        if name in skip:
            continue
        if entry.grouped:
            document = {key: moto.value(16) for key in entry.values}
            if entry.rotation != "manual" and getattr(entry.rotation, "master", None):
                document["masterarn"] = f"arn:aws:secretsmanager:{region}:123456789012:secret:x-AbCdEf"
            text = json.dumps(document)
            seeded.keys[name] = frozenset(entry.values)
        else:
            text = moto.value()
        extra: dict[str, Any] = {"KmsKeyId": key_arn} if with_key and len(seeded.arns) % 2 == 0 else {}
        created = sm.create_secret(
            Name=f"{seeded.prefix}{name}", SecretString=text, Description=f"{entry.description} (by hand)",
            Tags=[{"Key": "team", "Value": catalog.owner_of(entry)}, {"Key": "class", "Value": entry.class_}],
            **extra,
        )
        seeded.arns[name] = created["ARN"]
    return seeded


def drop(moto: Moto, seeded: Seeded) -> None:
    sm = moto.client("secretsmanager", seeded.region)
    for arn in seeded.arns.values():
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def bindings(catalog: Catalog, environment: str) -> dict[str, str]:
    """Environment variable -> `<secret>` or `<secret>:<key>`, as the envVars output writes them (no prefix)."""
    found = {}
    for name, entry in catalog.for_environment(environment).items():
        for key, value in entry.values.items():
            for var in value.env:
                found[var] = f"{name}:{key}" if key else name
    return found


def env_vars(report: Report) -> dict[str, str]:
    """The envVars output without the `<app>/<env>/` prefix."""
    return {var: where.split("/", 2)[2] for var, where in report.run.outputs["envVars"].items()}


def grouped_keys(catalog: Catalog, environment: str) -> dict[str, frozenset[str]]:
    return {n: frozenset(e.values) for n, e in catalog.for_environment(environment).items() if e.grouped}


def describe(moto: Moto, region: str, arn: str) -> dict[str, Any]:
    """What Pulumi's import compares the program's inputs with: DescribeSecret, in the provider's terms."""
    described = moto.client("secretsmanager", region).describe_secret(SecretId=arn)
    found: dict[str, Any] = {"name": described["Name"]}
    if described.get("Description") is not None:
        found["description"] = described["Description"]
    if described.get("KmsKeyId"):
        found["kmsKeyId"] = described["KmsKeyId"]
    if described.get("Tags"):
        found["tags"] = {t["Key"]: t["Value"] for t in described["Tags"]}
    return found


def declared(resource_inputs: dict[str, Any]) -> dict[str, Any]:
    """The same properties as the program registered them (the import's inputs)."""
    return {k: resource_inputs[k] for k in ("name", "description", "kmsKeyId", "tags") if k in resource_inputs}
