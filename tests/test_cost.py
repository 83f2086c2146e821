"""The monthly cost estimate of the root stacks, checked against a computation written out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from preview.cost import estimate
from preview.model import CollectedResource, plain
from tests.conftest import REPO, run_stack

DAYS = 730 / 24  # AWS's pricing month: 730 hours = 30.4167 days
VPC_WARNING = ("1 rotation function(s) run in a VPC and reach Secrets Manager through a NAT gateway or an interface "
               "VPC endpoint (com.amazonaws.{region}.secretsmanager), which the program does not create and this "
               "estimate does not count: an endpoint is about USD 0.01 per availability zone-hour (USD 7.30 a month "
               "per zone) plus data (https://aws.amazon.com/privatelink/pricing/)")
"""The root stacks' Redis rotation runs in the stack's subnets (rotationSubnetIds)."""
TRAIL_WARNING = ("access alerts see reads only while a CloudTrail trail logs read management events in "
                 "ap-southeast-2; the account's first copy of management events is free, a further trail's are not "
                 "(https://aws.amazon.com/cloudtrail/pricing/)")
"""Production's access alerts depend on a trail the stack does not make."""


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[CollectedResource], str]]:
    """The root stacks with redis-admin's value set (a `secure:` stand-in), so that redis has its value and
    schedule: until then it waits for the admin credential that installs it on the server."""
    runs = {}
    for name in ("production", "staging"):
        config = tmp_path_factory.mktemp(name) / f"Pulumi.{name}.yaml"
        config.write_text((REPO / f"Pulumi.{name}.yaml").read_text()
                          + "  secrets-platform:redisAdminPassword:\n    secure: v1:" + "A" * 44 + "\n")
        runs[name] = run_stack(name, config_file=config).run
    return {name: (run.resources, run.stack.values["aws:region"]) for name, run in runs.items()}


def counts(resources: list[CollectedResource]) -> dict[str, Any]:
    """What the hand computation below assumes about the program; a change here explains a failure there."""
    secrets = [r.inputs for r in resources if r.type == "aws:secretsmanager/secret:Secret"]
    schedules = sorted(
        (r.inputs["secretId"].split(":secret:")[1], r.inputs["rotationRules"]["automaticallyAfterDays"])
        for r in resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"
    )
    memory = {r.inputs["memorySize"] for r in resources if r.type == "aws:lambda/function:Function"}
    return {
        "secrets": len(secrets),
        "replicas": sum(len(s.get("replicas") or []) for s in secrets),
        "keys": sum(1 for r in resources if r.type == "aws:kms/key:Key" and r.inputs.get("enableKeyRotation")),
        "schedules": [days for _, days in schedules],
        "memory": memory,
    }


def test_production_estimate_matches_the_hand_computation(stacks: dict[str, Any]) -> None:
    resources, region = stacks["production"]
    assert counts(resources) == {"secrets": 10, "replicas": 10, "keys": 2, "schedules": [365, 90, 90, 365],
                                 "memory": {256}}
    cost = estimate(resources, region=region)

    # Secrets Manager storage: 10 secrets + 10 replicas (ap-southeast-1), USD 0.40 each.
    storage = 20 * 0.40                                             # 8.00
    # Reads: 10 secrets x 240 GetSecretValue a day x 30.4167 days = 73,000 calls.
    reads = 10 * 240 * DAYS                                         # 73,000
    # Rotations a month: jwt-secret and session-secret every 365 days, redis and
    # service-internal-key every 90 days.
    rotations = 2 * DAYS / 365 + 2 * DAYS / 90                      # 0.8426
    # API calls: the reads plus 12 calls per rotation, USD 0.05 per 10,000.
    api = (reads + 12 * rotations) / 10_000 * 0.05                  # 0.3651
    # KMS: 2 keys (ap-southeast-2 and ap-southeast-1) at USD 1.00.
    keys = 2 * 1.00
    # KMS requests: a Decrypt per read, per rotation 5 Decrypts + a GenerateDataKey in each of the
    # 2 regions; USD 0.03 per 10,000.
    kms_requests = (reads + rotations * (5 + 2)) / 10_000 * 0.03     # 0.2190
    # Lambda: 4 invocations per rotation, USD 0.20 per million; 2 s each at 256 MB = 0.5 GB-s each.
    invocations = 4 * rotations                                     # 3.37
    lambda_requests = invocations / 1_000_000 * 0.20
    lambda_compute = invocations * 2 * 256 / 1024 * 0.0000166667
    # Access alerts (on in production): EventBridge ingests AWS management events for free, so matching every
    # GetSecretValue costs nothing (EventBridge pricing page); 30 alerts a month, each one SNS publish
    # (USD 0.50 per million) and one email (USD 2.00 per 100,000).
    alerts = 30 / 1_000_000 * 0.50 + 30 / 100_000 * 2.00            # 0.0006
    total = storage + api + keys + kms_requests + lambda_requests + lambda_compute + alerts

    assert total == pytest.approx(10.5847, abs=1e-4)
    assert cost["monthlyUsd"] == round(total, 2) == 10.58
    # After each key's second yearly rotation: + USD 1.00 x 2 rotations x 2 keys.
    assert cost["monthlyUsdSteadyState"] == round(total + 4.00, 2) == 14.58
    lines = cost["lines"]
    assert lines["secrets"]["monthlyUsd"] == 4.00 and lines["replicas"]["monthlyUsd"] == 4.00
    assert lines["secretsManagerApiCalls"]["monthlyUsd"] == pytest.approx(api, abs=1e-4)
    assert lines["kmsKeys"]["monthlyUsd"] == 2.00
    assert lines["kmsRequests"]["monthlyUsd"] == pytest.approx(kms_requests, abs=1e-4)
    assert lines["lambdaRequests"]["quantity"] == pytest.approx(invocations, abs=1e-3)
    assert lines["lambdaCompute"]["quantity"] == pytest.approx(invocations * 0.5, abs=1e-3)
    assert cost["counts"]["rotationsPerMonth"] == pytest.approx(rotations, abs=1e-4)
    assert cost["region"] == "ap-southeast-2"
    assert lines["accessAlertRule"]["monthlyUsd"] == 0.0
    assert lines["accessAlertRule"]["quantity"] == pytest.approx(reads + 12 * rotations, abs=1e-2)
    assert lines["accessAlerts"]["monthlyUsd"] == pytest.approx(alerts, abs=1e-4)
    assert cost["warnings"] == [VPC_WARNING.format(region="ap-southeast-2"), TRAIL_WARNING]
    assert cost["pricesAsOf"] and cost["currency"] == "USD"


def test_staging_estimate_matches_the_hand_computation(stacks: dict[str, Any]) -> None:
    resources, region = stacks["staging"]
    assert counts(resources) == {"secrets": 10, "replicas": 0, "keys": 1, "schedules": [365, 90, 90, 365],
                                 "memory": {256}}
    cost = estimate(resources, region=region)

    storage = 10 * 0.40                                             # 4.00, no replicas
    reads = 10 * 240 * DAYS
    rotations = 2 * DAYS / 365 + 2 * DAYS / 90
    api = (reads + 12 * rotations) / 10_000 * 0.05
    keys = 1 * 1.00
    kms_requests = (reads + rotations * (5 + 1)) / 10_000 * 0.03     # one region: one GenerateDataKey
    invocations = 4 * rotations
    lambdas = invocations / 1_000_000 * 0.20 + invocations * 0.5 * 0.0000166667
    total = storage + api + keys + kms_requests + lambdas

    assert total == pytest.approx(5.5841, abs=1e-4)
    assert cost["monthlyUsd"] == 5.58
    assert "accessAlerts" not in cost["lines"]  # off in staging by default
    assert cost["monthlyUsdSteadyState"] == round(total + 2.00, 2) == 7.58


def test_overrides_and_volume_assumptions(stacks: dict[str, Any]) -> None:
    resources, region = stacks["staging"]
    quiet = estimate(resources, region=region, reads_per_secret_per_day=0)
    # Without reads only the rotations call the API: 0.8426 x 12 calls.
    assert quiet["counts"]["secretsManagerApiCalls"] == pytest.approx((2 * DAYS / 365 + 2 * DAYS / 90) * 12, abs=1e-3)

    # redis rotated weekly instead of every 90 days; database-url replaced by hand once a month.
    busy = estimate(resources, region=region, reads_per_secret_per_day=0,
                    rotations_per_month={"redis": DAYS / 7, "filot/staging/database-url": 1})
    by_secret = {r["secret"]: r for r in busy["rotations"]}
    assert by_secret["filot/staging/redis"]["rotationsPerMonth"] == pytest.approx(DAYS / 7, abs=1e-4)
    assert by_secret["filot/staging/database-url"]["by"] == "hand"
    function_rotations = 2 * DAYS / 365 + DAYS / 90 + DAYS / 7
    assert busy["counts"]["lambdaInvocations"] == pytest.approx(4 * function_rotations, abs=1e-3)
    assert busy["counts"]["secretsManagerApiCalls"] == pytest.approx(12 * function_rotations + 1, abs=1e-3)


def test_a_region_whose_prices_were_not_checked_is_called_out(stacks: dict[str, Any]) -> None:
    resources, _ = stacks["staging"]
    cost = estimate(resources, region="me-central-1")
    assert cost["warnings"] == [VPC_WARNING.format(region="me-central-1"),
                                "prices are us-east-1 list prices; not checked for me-central-1"]


def test_no_value_reaches_the_estimate(stacks: dict[str, Any]) -> None:
    resources, region = stacks["production"]
    text = repr(estimate(resources, region=region))
    values = [str(plain(r.inputs["secretString"])) for r in resources
              if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert values
    assert not any(value in text for value in values), "a secret value appears in the estimate"


@pytest.mark.parametrize(("rules", "per_month"), [
    ({"scheduleExpression": "rate(0 days)"}, 0.0),                       # crashed with ZeroDivisionError
    ({"scheduleExpression": "rate(0 hours)"}, 0.0),
    ({"automaticallyAfterDays": 0}, 0.0),
    ({"scheduleExpression": "rate(6 hours)", "duration": "2h"}, 730 / 6),
    ({"scheduleExpression": "rate(30 days)", "duration": "2h"}, DAYS / 30),
    ({"scheduleExpression": "cron(0 18 ? * SAT *)"}, 52 * DAYS / 365),   # Saturdays of a year
    ({"scheduleExpression": "cron(0 8 1,15 * ? *)"}, 24 * DAYS / 365),  # twice a month
    ({"scheduleExpression": "cron(0 0 31 2 ? *)"}, 0.0),                 # never fires
])
def test_rotations_a_schedule_makes(stacks: dict[str, Any], rules: dict[str, Any], per_month: float) -> None:
    """A schedule's rotations per month from its own rules: a cron by its firings, never a crash."""
    from dataclasses import replace

    resources, region = stacks["staging"]
    rotations = [r for r in resources if r.type == "aws:secretsmanager/secretRotation:SecretRotation"]
    (redis,) = [r for r in rotations if r.inputs["secretId"].split(":secret:")[1].startswith("filot/staging/redis")]
    changed = [replace(r, inputs={**r.inputs, "rotationRules": rules}) if r is redis else r for r in resources]
    by_secret = {r["secret"]: r["rotationsPerMonth"] for r in estimate(changed, region=region)["rotations"]}
    assert by_secret.get("filot/staging/redis", 0.0) == pytest.approx(per_month, abs=1e-3)
