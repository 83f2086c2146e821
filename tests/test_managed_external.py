"""Managed external secrets (`rotation: {managed_external: <partner>}`): Secrets Manager rotates a partner's
credential itself, as a role of the stack's. What the program declares (recorded resources and inputs of the
offline preview), what the policy pack says of it, and what the catalog refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import parse_catalog
from components.errors import ConfigurationError
from preview.cli import preview
from preview.model import CollectedResource
from tests.conftest import MINIMAL_STACK, run_stack

SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
KEY = "aws:kms/key:Key"
SECURE = "\n    secure: v1:" + "A" * 44 + "\n"
VALUES = "".join(f"  secrets-platform:{k}:{SECURE}" for k in ("crmConsumerKey", "crmConsumerSecret"))
STACK = MINIMAL_STACK + """\
  secrets-platform:crmBaseUri: https://shop.my.salesforce.com
  secrets-platform:crmAppId: 0xA1B2C3D4E5F6
  secrets-platform:crmConsumerId: 0c1A2B3C4D5E6F
"""


def catalog(rotation: str = "{managed_external: salesforce, every_days: 90, metadata: {apiVersion: v65.0}}",
            keys: str | None = None) -> str:
    keys = keys or """\
      consumerKey: {external: {}}
      consumerSecret: {external: {}}
      baseUri: {config: {}}
      appId: {config: {}}
      consumerId: {config: {}}
"""
    return f"""\
app: shop
owner: platform
secrets:
  crm:
    description: Salesforce external client app
    class: critical
    rotation: {rotation}
    consumers: [api]
    keys:
{keys}  api-token:
    description: A token Secrets Manager does not manage
    class: configuration
    value: {{env: API_TOKEN, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}
"""


def _of(resources: list[CollectedResource], type_: str, part: str) -> list[CollectedResource]:
    return [r for r in resources if r.type == type_ and part in r.name]


def test_the_secret_carries_its_partner_s_type(make_project: Callable[..., Path]) -> None:
    resources = run_stack("staging", make_project(catalog(), STACK + VALUES)).run.resources
    (crm,) = _of(resources, SECRET, "-crm-")
    (token,) = _of(resources, SECRET, "-api-token-")
    assert crm.inputs["type"] == "SalesforceClientSecret" and "type" not in token.inputs


def test_secrets_manager_rotates_it_as_the_stack_s_role_with_the_partner_s_metadata(
        make_project: Callable[..., Path]) -> None:
    resources = run_stack("staging", make_project(catalog(), STACK + VALUES)).run.resources
    (role,) = _of(resources, ROLE, "managed-external")
    (rotation,) = _of(resources, ROTATION, "crm")
    assert "rotationLambdaArn" not in rotation.inputs  # no function: Secrets Manager and the partner rotate it
    assert role.urn in rotation.property_dependencies["externalSecretRotationRoleArn"]
    assert rotation.inputs["externalSecretRotationMetadatas"] == [{"key": "apiVersion", "value": "v65.0"}]
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 90}
    assert rotation.inputs["rotateImmediately"] is False
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [(s["Principal"], s["Condition"]) for s in trust] == [
        ({"Service": "secretsmanager.amazonaws.com"}, {"StringEquals": {"aws:SourceAccount": "210987654321"}})]


def test_the_role_may_rotate_only_that_secret_while_it_has_the_partner_s_type(
        make_project: Callable[..., Path]) -> None:
    resources = run_stack("staging", make_project(catalog(), STACK + VALUES)).run.resources
    (policy,) = _of(resources, POLICY, "managed-external-policy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    rotate = statements["RotateManagedExternalSecrets"]
    assert rotate["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
    resources_ = rotate["Resource"] if isinstance(rotate["Resource"], list) else [rotate["Resource"]]
    assert all(":secret:shop/staging/crm-" in r for r in resources_)
    assert rotate["Condition"] == {"StringEquals": {"secretsmanager:resource/Type": "SalesforceClientSecret"}}
    assert statements["EncryptThroughSecretsManager"]["Condition"]["StringEquals"]["kms:ViaService"]
    # The environment's key lets the role store the partner's new value.
    (key,) = [r for r in resources if r.type == KEY]
    assert "shop-staging-rotate-managed-external" in json.dumps(key.inputs["policy"])


def test_no_value_no_schedule_and_no_managed_external_no_role(make_project: Callable[..., Path]) -> None:
    resources = run_stack("staging", make_project(catalog(), STACK)).run.resources
    assert _of(resources, ROTATION, "crm") == []  # it comes with the value, at the next `pulumi up`
    assert _of(resources, ROLE, "managed-external")  # the key policy names it already
    plain = catalog("manual").replace("    class: critical\n    rotation: manual",
                                      "    class: critical\n    rotation: manual\n    rotation_reason: set by hand")
    assert _of(run_stack("staging", make_project(plain, STACK)).run.resources, ROLE, "managed-external") == []


def test_the_pack_takes_it_for_a_rotated_secret(make_project: Callable[..., Path]) -> None:
    report = preview("staging", make_project(catalog(), STACK + VALUES))
    assert [(v.policy, v.message) for v in report.violations if v.policy != "secret-name-arn-suffix"] == []


@pytest.mark.parametrize(("rotation", "keys", "field", "message"), [
    ("{managed_external: salesforce, every_days: 90}", "      consumerKey: {external: {}}\n", "keys",
     "needs the keys consumerSecret, baseUri, appId, consumerId"),
    ("{managed_external: salesforce, every_days: 90}", None, "keys.consumerSecret", "the partner issues every value"),
    ("{managed_external: datadog, every_days: 90}", None, "rotation", None),
    ("{managed_external: salesforce, schedule: 'rate(2 hours)'}", None, "rotation.schedule", "rate(2 hours)"),
    ("{managed_external: salesforce, every_days: 90, metadata: {'api version': x}}", None, "rotation", None),
    ("{managed_external: salesforce, every_days: 90, metadata: {apiVersion: ''}}", None, "rotation", None),
    ("{managed_external: salesforce, every_days: 90, strategy: token}", None, "rotation", None),
])
def test_the_catalog_refuses(rotation: str, keys: str | None, field: str, message: str | None) -> None:
    if message == "the partner issues every value":
        keys = ("      consumerKey: {external: {}}\n"
                "      consumerSecret: {generate: {kind: bytes, bytes: 32, encoding: hex}}\n"
                "      baseUri: {config: {}}\n      appId: {config: {}}\n      consumerId: {config: {}}\n")
    data: Any = yaml.safe_load(catalog(rotation, keys))
    with pytest.raises(ConfigurationError) as caught:
        parse_catalog(data, "catalog.yaml")
    assert caught.value.secret == "crm" and str(caught.value.field).startswith(field)
    assert message is None or message in caught.value.reason
    assert "\n" not in str(caught.value)
