"""The first-value function's resources: least privilege, a writer of the key, invoked by the pipeline, and a
stack the policy pack accepts (the same pack `pulumi up` runs, on production's config: mandatory rules)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from pathlib import Path

from preview.cli import preview
from tests.conftest import REPO

CATALOG = """\
app: shop
owner: platform
environments: [production, staging]
secrets:
  archive-key:
    description: Encrypts backups
    class: critical
    rotation: on-compromise
    rotation_reason: re-encrypting old backups needs a migration
    consumers: [api]
    value: {env: ARCHIVE_KEY, generate: {kind: bytes, bytes: 32, encoding: hex}}
  session-signing-key:
    description: Signs sessions
    class: critical
    rotation: {strategy: token, every_days: 30}
    consumers: [api]
    value: {env: SESSION_SECRET, generate: {kind: bytes, bytes: 32, encoding: hex}}
"""
STACK = """\
config:
  aws:region: eu-west-1
  secrets-platform:accountId: "210987654321"
  secrets-platform:recoveryWindowDays: 30
  secrets-platform:protectSecrets: true
  secrets-platform:consumption: {api: {kind: runtime, cacheTtlSeconds: 0}}
  secrets-platform:principals:
    ci: ["arn:aws:iam::210987654321:role/shop-deploy"]
    runtime: ["arn:aws:iam::210987654321:role/shop-api"]
"""


def _statements(document: str) -> list[dict[str, object]]:
    return list(json.loads(document)["Statement"])


def _listed(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]


def test_least_privilege_a_key_writer_invoked_by_the_pipeline_and_accepted_by_the_pack(
        make_project: Callable[..., Path]) -> None:
    project = make_project(CATALOG, STACK, stack="production")
    report = preview("production", project, policy_config=REPO / "policies" / "config" / "production.json")
    report.wait()
    resources = report.run.resources
    policy = next(r for r in resources if r.type == "aws:iam/policy:Policy" and r.name.endswith("first-value-policy"))
    allows = [s for s in _statements(policy.inputs["policy"]) if s["Effect"] == "Allow"]
    actions = sorted(a for s in allows for a in _listed(s["Action"]))
    assert actions == ["kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents",
                       "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"]
    (secrets_statement,) = [s for s in allows if "secretsmanager:PutSecretValue" in _listed(s["Action"])]
    assert _listed(secrets_statement["Resource"]) == [
        "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shop/production/archive-key-??????"]
    (kms,) = [s for s in allows if "kms:GenerateDataKey" in _listed(s["Action"])]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}

    # Whoever runs `pulumi up` invokes it: the CI policy allows InvokeFunction on its ARN.
    function = next(r for r in resources if r.type == "aws:lambda/function:Function"
                    and r.name.endswith("first-value-function"))
    arn = f"arn:aws:lambda:eu-west-1:210987654321:function:{function.inputs['name']}"
    ci = next(r for r in resources if r.type == "aws:iam/policy:Policy" and r.inputs["name"].endswith("secrets-ci"))
    invoke = [s for s in _statements(ci.inputs["policy"]) if "lambda:InvokeFunction" in _listed(s["Action"])]
    assert invoke and any(fnmatch.fnmatchcase(arn, r) for s in invoke for r in _listed(s["Resource"]))

    # The key lets its role store values (PutSecretValue asks KMS for a data key with the caller's rights).
    role = next(r for r in resources if r.type == "aws:iam/role:Role" and r.name.endswith("first-value-role"))
    key = next(r for r in resources if r.type == "aws:kms/key:Key")
    assert role.inputs["name"] in key.inputs["policy"]

    # One Invocation per such secret, naming it only; nothing for the rotated token.
    invocations = [r for r in resources if r.type == "aws:lambda/invocation:Invocation"]
    assert [json.loads(r.inputs["input"]) for r in invocations] == [{"FirstValue": "shop/production/archive-key"}]
    assert report.violations == [], [v.message for v in report.violations]
