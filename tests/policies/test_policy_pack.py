"""The policy pack, evaluated as the engine evaluates it (a `python -m pulumi.policy` subprocess over gRPC)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import policy_cases as c
import policy_fixtures as f
import pytest

from preview import policy_check as pc
from preview.model import CollectedResource

EXPECTED = json.loads((Path(__file__).parent / "corpus" / "expected_messages.json").read_text())
ADVISORY_BY_DEFAULT = {"secret-description", "secret-name-arn-suffix"}
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def run(
    stack: list[CollectedResource], config: dict | None = None, stack_name: str = f.STACK
) -> list[pc.Violation]:
    return pc.evaluate(
        stack, project=f.PROJECT, stack=stack_name, policy_config=config, stack_config=f.STACK_CONFIG
    )


def where(v: pc.Violation) -> tuple[str, str]:
    return v.policy, v.urn.rsplit("::", 1)[-1]


def test_compliant_stack_has_no_findings() -> None:
    assert run(f.base_stack()) == []


def test_pack_advertises_every_rule_with_description_and_level() -> None:
    names = [p.name for p in c_registry()]
    assert len(names) == len(set(names)) == 37
    assert all(p.description and p.enforcement_level is not None for p in c_registry())
    assert len(c.CASES) >= 40
    # every rule has at least one planted violation in the corpus
    assert set(names) <= {case.policy for case in c.CASES} | {p for case in c.CASES for p, _ in case.also}


def c_registry() -> list:
    from guardrails.registry import ALL_POLICIES

    return ALL_POLICIES


@pytest.mark.parametrize("case", c.CASES, ids=[case.id for case in c.CASES])
def test_planted_violation_is_caught_by_its_rule(case: c.Case) -> None:
    violations = run(case.mutate(f.base_stack()))

    assert sorted(map(where, violations)) == sorted([(case.policy, case.resource), *case.also])
    mine = [v for v in violations if v.policy == case.policy]
    assert [v.message for v in mine] == EXPECTED[case.id]
    expected_level = "advisory" if case.policy in ADVISORY_BY_DEFAULT else "mandatory"
    assert {v.enforcement for v in mine} == {expected_level}
    assert all(v.blocking == (expected_level == "mandatory") for v in mine)


def test_enforcement_levels_from_policy_config() -> None:
    stack = f.set_input("key", "enableKeyRotation", False)(f.set_input("api-token", "description", None)(
        f.set_input("db-password", "kmsKeyId", None)(f.base_stack())))
    config = {
        "kms-key-rotation-enabled": "advisory",
        "secret-description": {"enforcementLevel": "mandatory"},
        "secret-customer-managed-kms-key": "disabled",
    }
    got = {v.policy: v.enforcement for v in run(stack, config)}
    assert got == {"kms-key-rotation-enabled": "advisory", "secret-description": "mandatory"}


def test_staging_config_file_makes_everything_advisory() -> None:
    config = json.loads((f.PACK_DIR / "config" / "staging.json").read_text())
    stack = f.set_input("key", "enableKeyRotation", False)(f.base_stack())
    violations = run(stack, config)
    # The production stack checked with staging settings: its names are now "another environment".
    assert violations and {v.enforcement for v in violations} == {"advisory"}
    assert pc.blocking(violations) == []


def test_rule_parameters_from_policy_config() -> None:
    config = {
        "secret-recovery-window": {"minRecoveryWindowDays": 30},
        "secret-rotation-required": {"maxRotationDays": 14},
    }
    stack = f.set_input("api-token", "recoveryWindowInDays", 20)(f.base_stack())
    got = {(v.policy, v.message) for v in run(stack, config)}
    assert got == {
        ("secret-recovery-window", "secret api-token has recoveryWindowInDays 20 days, below the 30-day minimum; "
         "set recovery_window_in_days to at least 30 (at most 30)."),
        ("secret-rotation-required", "rotation db-password-rotation of critical secret db-password runs every 30 "
         "days, slower than the 14-day maximum; rotate at least every 14 days."),
    }


def test_signing_keys_may_rotate_yearly() -> None:
    stack = f.set_input("db-password-rotation", "rotationRules", {"automaticallyAfterDays": 300})(f.base_stack())
    assert [v.policy for v in run(stack)] == ["secret-rotation-required"]
    assert run(f.set_tag("db-password", "rotation-kind", "signing-key")(stack)) == []


def test_a_secret_whose_rotation_makes_the_first_value_needs_no_version() -> None:
    empty = f.remove("db-password-version")(f.base_stack())
    assert run(f.set_input("db-password-rotation", "rotateImmediately", True)(empty)) == []
    assert run(empty) == [], "rotate_immediately defaults to true"
    waiting = f.set_input("db-password-rotation", "rotateImmediately", False)
    assert [v.policy for v in run(waiting(empty))] == ["rotation-has-first-value"]
    assert run(waiting(f.base_stack())) == [], "a waiting schedule with a first value is fine"


def test_a_critical_secret_without_a_value_yet_waits_for_its_rotation() -> None:
    """No version and no schedule: its value is still to be set (action required), and a schedule on
    an empty secret would fail its asynchronous test; once it has a version, the schedule is required again."""
    stack = f.remove("db-password-rotation")(f.base_stack())
    assert [v.policy for v in run(stack)] == ["secret-rotation-required"]
    assert run(f.remove("db-password-version")(stack)) == []


def test_a_value_the_application_renews_needs_no_schedule() -> None:
    stack = f.set_tag("api-token", "class", "critical")(f.base_stack())
    stack = f.set_tag("api-token", "rotation", "application")(stack)
    stack = f.set_option("api-token-version", ignore_changes=("secretString",))(stack)
    assert [v.policy for v in run(stack)] == ["application-renewed-writer"]
    writer = f.res("aws:iam/policy:Policy", "worker-write", {
        "description": "the worker stores the token it renews",
        "policy": f.doc({"Sid": "WriteRenewedValues", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue",
                         "Resource": f.secret_arn(f"{f.APP}/{f.ENV}/api-token")}),
        "tags": {"app": f.APP, "environment": f.ENV, "access": "app-write"},
    })
    assert run(f.add(writer)(stack)) == []
    prefix = f"arn:aws:secretsmanager:{f.REGION}:{f.ACCOUNT}:secret:{f.APP}/{f.ENV}"
    for resource in (f"arn:aws:secretsmanager:*:*:secret:{f.APP}/{f.ENV}/api-token-??????",
                     f"{prefix}/api-token-Zz9Yx8", f"{prefix}/api-*"):
        named = f.set_input("worker-write", "policy", f.doc({
            "Sid": "W", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": resource}))
        assert "application-renewed-writer" not in [v.policy for v in run(named(f.add(writer)(stack)))], resource
    # Another kind of policy's PutSecretValue (a pipeline's, a rotation's) is not the application's grant.
    other = f.res("aws:iam/policy:Policy", "worker-write", {**writer.inputs, "tags": {**writer.inputs["tags"],
                                                                                     "access": "rotation"}})
    assert [v.policy for v in run(f.add(other)(stack))] == ["application-renewed-writer"]
    # A grant on another secret does not count either.
    elsewhere = f.set_input("worker-write", "policy", f.doc({
        "Sid": "WriteRenewedValues", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue",
        "Resource": f.secret_arn(f"{f.APP}/{f.ENV}/api-token-old")}))
    assert [v.policy for v in run(elsewhere(f.add(writer)(stack)))] == ["application-renewed-writer"]


def test_on_compromise_with_a_reason_needs_no_rotation() -> None:
    stack = f.set_tag("api-token", "class", "critical")(f.base_stack())
    stack = f.set_tag("api-token", "rotation-reason", "issued by the card network; rotated on their notice")(stack)
    assert run(stack) == []


def test_suppression_with_reason_is_reported_not_enforced() -> None:
    stack = f.set_input("api-token", "recoveryWindowInDays", 3)(f.base_stack())
    reason = "legacy token, deleted in ticket SEC-123 next sprint"
    config = {"secret-recovery-window": {"suppressions": [{"name": "api-token", "reason": reason}]}}

    (v,) = run(stack, config)

    assert v.suppressed and not v.blocking
    assert (v.policy, v.reason, v.enforcement) == ("secret-recovery-window", reason, "mandatory")
    assert v.urn == f.urn("aws:secretsmanager/secret:Secret", "api-token")
    assert v.message.startswith("secret api-token has recoveryWindowInDays 3 days")


def test_suppression_of_a_stack_rule() -> None:
    stack = f.remove("db-password-rotation")(f.base_stack())
    reason = "rotation Lambda lands in the next release (SEC-42)"
    config = {"secret-rotation-required": {"suppressions": [{"name": "db-password", "reason": reason}]}}

    (v,) = run(stack, config)

    assert (v.policy, v.suppressed, v.reason) == ("secret-rotation-required", True, reason)
    assert "db-password: critical secret db-password has no SecretRotation" in v.message


def test_suppression_without_reason_is_rejected_by_the_schema_and_ignored() -> None:
    stack = f.set_input("api-token", "recoveryWindowInDays", 3)(f.base_stack())
    config = {"secret-recovery-window": {"suppressions": [{"name": "api-token", "reason": " "}]}}
    (v,) = run(stack, config)
    assert not v.suppressed and v.blocking


def test_suppression_names_one_resource_only() -> None:
    stack = f.set_input("db-password", "recoveryWindowInDays", 3)(
        f.set_input("api-token", "recoveryWindowInDays", 3)(f.base_stack()))
    config = {"secret-recovery-window": {"suppressions": [{"name": "api-token", "reason": "legacy, SEC-123"}]}}
    got = sorted((where(v), v.suppressed) for v in run(stack, config))
    assert got == [(("secret-recovery-window", "api-token"), True), (("secret-recovery-window", "db-password"), False)]


def test_unknown_value_makes_the_rule_undecided_not_pass_or_fail() -> None:
    stack = f.set_input("db-password", "kmsKeyId", UNKNOWN_STRING)(f.base_stack())
    violations = [v for v in run(stack) if v.policy == "secret-customer-managed-kms-key"]
    (v,) = violations
    assert v.undecided and v.enforcement == "advisory" and not v.blocking
    assert "cannot decide during preview" in v.message and ".kmsKeyId" in v.message


def test_generated_value_unknown_during_preview_passes() -> None:
    # secretString comes from random:* — the rule does not need the (unknown) value itself.
    stack = f.set_input("db-password-version", "secretString", UNKNOWN_STRING)(f.base_stack())
    assert run(stack) == []


def test_environment_comes_from_the_stack_name() -> None:
    # A stack named "acme-staging" holding production names: the name rule says so.
    violations = run(f.base_stack(), stack_name="acme-staging")
    names = {v.message for v in violations if v.policy == "secret-name-convention"}
    assert "secret name 'payments/production/api-token' does not match 'payments/staging/<name>'; rename the " \
        "secret to 'payments/staging/<name>'." in names


def test_unknown_policy_in_config_is_an_error() -> None:
    with pytest.raises(ValueError, match="secret-recovery-windw"):
        run(f.base_stack(), {"secret-recovery-windw": "advisory"})


def test_many_resources_are_each_analyzed() -> None:
    """Sixty copies of the stack: every resource gets its Analyze call and its findings (no time limit:
    speed is measured by bench/, never asserted)."""
    base = f.base_stack()
    many = [replace(r, urn=f"{r.urn}-{i}", name=f"{r.name}-{i}") for i in range(60) for r in base[1:]]
    broken = f.set_input("db-password", "kmsKeyId", None)(base)
    copies = [replace(r, urn=f"{r.urn}-{i}", name=f"{r.name}-{i}") for i in range(60) for r in broken[1:]]
    rule = "secret-customer-managed-kms-key"
    assert not [v for v in run([base[0], *many]) if v.policy == rule]
    assert pc.LAST_TIMING.resources == len(many) + 1
    found = run([base[0], *copies])
    assert len({v.urn for v in found if v.policy == rule}) == 60


@pytest.mark.parametrize(("name", "flagged"), [
    ("payments/production/jwt-secret", True),        # the seeds' own names: `-secret` is six characters
    ("payments/production/session-secret", True),
    ("payments/production/db-passwd", True),
    ("payments/production/jwt-secret-key", False),
    ("payments/production/jwt-signing-secret1", False),  # seven after the last hyphen
    ("payments/production/api-token", False),            # five
    ("payments/production/redis", False),
])
def test_a_name_that_looks_like_an_arn_suffix_is_an_advisory_finding(name: str, flagged: bool) -> None:
    violations = run(f.set_input("api-token", "name", name)(f.base_stack()))
    assert [(v.policy, v.enforcement, v.blocking) for v in violations] == (
        [("secret-name-arn-suffix", "advisory", False)] if flagged else [])


def _policy_resource(urn: str, type_: str, props: dict[str, Any], deps: dict[str, Any] | None = None) -> Any:
    from pulumi_policy import PolicyResource, PolicyResourceOptions
    from pulumi_policy.policy import PolicyCustomTimeouts
    from pulumi_policy.proxy import unknown_checking_proxy

    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return PolicyResource(type_, unknown_checking_proxy(props), urn, urn.rsplit("::", 1)[-1], options, None,
                          None, [], dict(deps or {}))


def test_references_answer_as_refers_to_does() -> None:
    """The stack rules' index of references gives refers_to's answers, in order, and raises where
    refers_to raises (a value unknown during preview, read only when no dependency decides first)."""
    from guardrails.stack import References, refers_to
    from pulumi_policy.proxy import UnknownValueError

    secret = "aws:secretsmanager/secret:Secret"
    version = "aws:secretsmanager/secretVersion:SecretVersion"
    targets = [_policy_resource(f"urn:s{i}", secret, {"name": f"app/prod/s{i}"}) for i in range(4)]
    targets.append(_policy_resource("urn:nameless", secret, {}))
    users = [
        _policy_resource("urn:v0", version, {"secretId": "x"}, {"secretId": [targets[0]]}),
        _policy_resource("urn:v1", version, {"secretId": "app/prod/s1"}),
        _policy_resource("urn:v2", version, {"secretId": "arn:aws:secretsmanager:r:1:secret:app/prod/s2-AbCdEf"}),
        _policy_resource("urn:v3", version, {"secretId": ""}),
        _policy_resource("urn:v4", version, {}),
        _policy_resource("urn:v5", version, {"secretId": "app/prod/s1"}, {"secretId": [targets[3]]}),
    ]
    index = References(users, "secretId")
    for target in targets:
        assert index.referring(target) == [u for u in users if refers_to(u, "secretId", target)]
        assert index.any(target) == any(refers_to(u, "secretId", target) for u in users)
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    late = [*users[:1], _policy_resource("urn:u", version, {"secretId": unknown})]
    index = References(late, "secretId")
    assert index.any(targets[0]) is True  # decided by a dependency before the unknown value is read
    with pytest.raises(UnknownValueError):
        refers_to(late[1], "secretId", targets[1])
    with pytest.raises(UnknownValueError):
        index.any(targets[1])
    with pytest.raises(UnknownValueError):
        index.referring(targets[0])


def _findings_of_every_case(monkeypatch: pytest.MonkeyPatch, cache: str) -> list[list[pc.Violation]]:
    """The findings on the compliant stack, every planted violation and a value unknown during preview,
    from one pack process started with GUARDRAILS_SDK_CACHE=`cache`."""
    monkeypatch.setenv("GUARDRAILS_SDK_CACHE", cache)
    env = pc._pack_env(f.PROJECT, f.STACK, f.STACK_CONFIG, "organization", legacy=True)
    pack = pc._Pack(pc.DEFAULT_PACK_DIR, env)
    unknown = f.set_input("db-password", "name", UNKNOWN_STRING)(f.base_stack())
    try:
        return [pc.drive(pack.stub, stack) for stack in
                [f.base_stack(), unknown, *(case.mutate(f.base_stack()) for case in c.CASES)]]
    finally:
        pack.close()


def test_the_sdk_cache_changes_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """guardrails.sdk_cache (each resource's properties read once per request) gives exactly the
    findings, in the same order, that the SDK gives alone."""
    cached = _findings_of_every_case(monkeypatch, "on")
    plain = _findings_of_every_case(monkeypatch, "off")
    assert cached == plain
    assert sum(map(len, cached)) > len(c.CASES)  # the comparison covers real findings


@pytest.mark.parametrize(("setting", "installed"), [("", "True True"), ("off", "False False")])
def test_the_sdk_cache_is_installed_in_the_pack(setting: str, installed: str) -> None:
    """The pinned pulumi-policy has what the cache relies on (a newer one without it would run
    uncached); installing twice is harmless; GUARDRAILS_SDK_CACHE=off leaves the SDK alone."""
    import os
    import subprocess
    import sys

    script = "from guardrails import sdk_cache; print(sdk_cache.install(), sdk_cache.install())"
    done = subprocess.run([sys.executable, "-c", script], cwd=f.PACK_DIR, capture_output=True, text=True,
                          check=True, timeout=120, env={**os.environ, "GUARDRAILS_SDK_CACHE": setting})
    assert done.stdout.strip() == installed
