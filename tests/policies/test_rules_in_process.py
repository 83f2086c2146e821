"""The resource rules on the planted-violation corpus, called in this process (tests/policies/in_process.py):
exactly the findings the engine path reports (test_policy_pack.py), with their exact messages.

Also the edges of the IAM and secret rules the corpus does not reach one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import policy_cases as c
import policy_fixtures as f
import pytest
from in_process import engine_shape, resource_findings
from pulumi_policy import ResourceValidationPolicy

from preview.model import CollectedResource

EXPECTED = json.loads((Path(__file__).parent / "corpus" / "expected_messages.json").read_text())


def _policies() -> list[object]:
    from guardrails.registry import ALL_POLICIES

    return list(ALL_POLICIES)


RESOURCE_RULES = frozenset(p.name for p in _policies() if isinstance(p, ResourceValidationPolicy))


@pytest.fixture(autouse=True)
def _production_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine names the stack to the analyzer process; the rules read it for the environment.
    monkeypatch.setenv("PULUMI_STACK", f.STACK)


def findings(stack: list[CollectedResource]) -> list[tuple[str, str, str]]:
    return resource_findings(_policies(), stack)


def where(stack: list[CollectedResource]) -> list[tuple[str, str]]:
    return sorted((p, r) for p, r, _ in findings(stack))


def test_the_compliant_stack_has_no_finding() -> None:
    assert findings(f.base_stack()) == []


RESOURCE_CASES = [case for case in c.CASES if case.policy in RESOURCE_RULES]


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=[case.id for case in RESOURCE_CASES])
def test_planted_violation_in_process(case: c.Case) -> None:
    got = findings(case.mutate(f.base_stack()))
    expected = sorted(p for p in [(case.policy, case.resource), *case.also] if p[0] in RESOURCE_RULES)
    assert sorted((p, r) for p, r, _ in got) == expected
    assert [m for p, _, m in got if p == case.policy] == EXPECTED[case.id]


# --- iam-ci-deny-production-delete ------------------------------------------------------------------

CI = "deployer-ci"
RULE = "iam-ci-deny-production-delete"


def _deny(resource: str | list[str], action: str | list[str] = "secretsmanager:DeleteSecret",
          condition: dict | None = None, effect: str = "Deny") -> Callable[[list[CollectedResource]], list]:
    return f.set_statement(CI, 1, Resource=resource, Action=action, Condition=condition, Effect=effect)


@pytest.mark.parametrize("resource", [
    "*",
    "arn:aws:secretsmanager:*:*:secret:*",
    f"arn:aws:secretsmanager:us-east-1:{f.ACCOUNT}:secret:*",
    "arn:aws:secretsmanager:*:*:secret:payments/production/*",
    f"arn:aws-us-gov:secretsmanager:*:{f.ACCOUNT}:secret:payments/production/*",
    ["arn:aws:secretsmanager:*:*:secret:payments/staging/*", "arn:aws:secretsmanager:*:*:secret:payments/production/*"],
])
def test_an_unconditional_deny_on_every_production_secret_passes(resource: str | list[str]) -> None:
    assert findings(_deny(resource)(f.base_stack())) == []
    assert findings(_deny(resource, action=["secretsmanager:Delete*"])(f.base_stack())) == []
    assert RULE not in {p for p, _, _ in findings(_deny(resource, action="secretsmanager:*")(f.base_stack()))}


@pytest.mark.parametrize("statement", [
    {"resource": "*", "condition": {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}},
    {"resource": "*", "condition": {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "30"}}},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/*",
     "condition": {"StringEquals": {"aws:ResourceTag/class": "critical"}}},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/db-password-AbCdEf"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/production/db-*"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/staging/*"},
    {"resource": "arn:aws:secretsmanager:*:*:secret:payments/*"},
    {"resource": "arn:aws:s3:::payments/production/*"},
    {"resource": "*", "action": "secretsmanager:PutSecretValue"},
    {"resource": "*", "effect": "Allow", "action": "secretsmanager:ListSecrets"},
], ids=["force-delete-only", "short-window-only", "tag-condition", "one-secret", "some-secrets", "staging",
        "app-wide-pattern", "not-secrets-manager", "other-action", "allow"])
def test_only_an_unconditional_deny_on_every_production_secret_counts(statement: dict) -> None:
    stack = _deny(**statement)(f.base_stack())
    ci = [(p, r, m) for p, r, m in findings(stack) if p == RULE]
    assert ci == [(RULE, CI, EXPECTED["iam-ci-no-deny"][0])]


def test_the_rule_reads_only_ci_policies() -> None:
    no_deny = f.set_statement(CI, 1, Effect="Allow", Action="secretsmanager:ListSecrets", Resource="*")
    for kind in ("read", "rotation", "app-write"):
        stack = f.set_tag(CI, "access", kind)(no_deny(f.base_stack()))
        assert RULE not in {p for p, _, _ in findings(stack)}, kind


def test_untagged_policies_take_their_kind_from_the_name() -> None:
    no_deny = f.set_statement(CI, 1, Effect="Allow", Action="secretsmanager:ListSecrets", Resource="*")
    untagged = f.set_tag(CI, "access", None)(no_deny(f.base_stack()))
    assert (RULE, CI) in {(p, r) for p, r, _ in findings(untagged)}, "`-ci` names a CI policy"
    renamed = [r if r.name != CI else CollectedResource(**{**r.__dict__, "name": "deployer-pipeline"})
               for r in untagged]
    assert RULE not in {p for p, _, _ in findings(renamed)}


# --- engine shape -----------------------------------------------------------------------------------


def test_numbers_reach_rules_as_floats() -> None:
    assert engine_shape({"a": 7, "b": [1, True, None, "x"], "c": 2.5}) == {"a": 7.0, "b": [1.0, True, None, "x"],
                                                                           "c": 2.5}
    assert isinstance(engine_shape(7), float)


# --- the other IAM rules' edges ----------------------------------------------------------------------

READ_POLICY = "app-read"


def _policy(name: str, *statements: dict, tags: dict | None = None) -> CollectedResource:
    inputs: dict = {"policy": f.doc(*statements)}
    if tags is not None:
        inputs["tags"] = tags
    return f.res("aws:iam/policy:Policy", name, inputs)


def _only(resource: CollectedResource, rule: str) -> list[str]:
    return [m for p, r, m in findings([resource]) if p == rule and r == resource.name]


DENY_FIRST = {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}


def test_a_deny_before_an_allow_does_not_end_the_checks() -> None:
    star = _policy("x-ci", DENY_FIRST,
                   {"Effect": "Allow", "Action": "*", "Resource": f.secret_arn("payments/production/a")})
    assert _only(star, "iam-no-wildcard-actions") == [
        "Policy x-ci statement #2 allows '*'; list the specific actions needed (e.g. secretsmanager:GetSecretValue, "
        "secretsmanager:DescribeSecret)."]
    resource = _policy("x-ci", DENY_FIRST, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                           "Resource": "*"})
    assert _only(resource, "iam-no-star-resource") == [
        "Policy x-ci statement #2 allows secretsmanager:GetSecretValue on Resource '*' although they support "
        "resource-level permissions; name the secret / key ARNs."]
    reads = _policy("x-read", DENY_FIRST, {"Effect": "Allow", "Action": "secretsmanager:PutSecretValue",
                                          "Resource": f.secret_arn("payments/production/a")})
    assert _only(reads, "iam-read-only-policy") == [
        "read-only Policy x-read statement #2 allows non-read action(s) secretsmanager:PutSecretValue; keep only "
        "Read/List actions or change the access tag."]


def test_not_action_in_an_allow_is_a_wildcard() -> None:
    policy = _policy("x-ci", {"Sid": "Everything", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert _only(policy, "iam-no-wildcard-actions") == [
        "Policy x-ci statement 'Everything' uses NotAction in an Allow, which grants every other action; list the "
        "allowed actions instead."]


SIX = ["secretsmanager:DeleteSecret", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret",
       "secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:RotateSecret"]


@pytest.mark.parametrize(("count", "suffix"), [(5, ""), (6, " and 1 more")])
def test_long_lists_are_shortened(count: int, suffix: str) -> None:
    actions = SIX[:count]
    shown = ", ".join(sorted(actions)[:5]) + suffix
    star = _policy("x-ci", {"Effect": "Allow", "Action": actions, "Resource": "*"})
    assert _only(star, "iam-no-star-resource") == [
        f"Policy x-ci statement #1 allows {shown} on Resource '*' although they support resource-level "
        "permissions; name the secret / key ARNs."]
    reads = _policy("x-read", {"Effect": "Allow", "Action": actions, "Resource": f.secret_arn("payments/production/a")})
    assert _only(reads, "iam-read-only-policy") == [
        f"read-only Policy x-read statement #1 allows non-read action(s) {shown}; keep only Read/List actions or "
        "change the access tag."]


@pytest.mark.parametrize(("name", "tags", "read_only"), [
    ("read", None, True),
    ("team-app-read", None, True),
    ("team-app-reader", None, False),
    ("team-app-ci", {"access": "read"}, True),
    ("team-app-read", {"access": "ci"}, False),
])
def test_the_access_kind_from_the_tag_or_the_last_segment(name: str, tags: dict | None, read_only: bool) -> None:
    policy = _policy(name, {"Effect": "Allow", "Action": "secretsmanager:PutSecretValue",
                            "Resource": f.secret_arn("payments/production/a")}, tags=tags)
    assert bool(_only(policy, "iam-read-only-policy")) is read_only


def test_policies_attached_to_users() -> None:
    group = f.res("aws:iam/policyAttachment:PolicyAttachment", "ops-attach",
                  {"policyArn": "arn:aws:iam::123456789012:policy/x", "users": ["alice", "bob"], "roles": ["r"]})
    assert _only(group, "iam-no-user-policies") == [
        "PolicyAttachment ops-attach attaches a policy to IAM user(s) alice, bob; attach it to roles only."]
    roles_only = f.res("aws:iam/policyAttachment:PolicyAttachment", "ops-attach",
                       {"policyArn": "arn:aws:iam::123456789012:policy/x", "roles": ["r"]})
    assert _only(roles_only, "iam-no-user-policies") == []
    role_attachment = f.res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "r-attach",
                            {"policyArn": "arn:aws:iam::123456789012:policy/x", "role": "r", "users": ["alice"]})
    assert _only(role_attachment, "iam-no-user-policies") == []
    inline = f.res("aws:iam/userPolicy:UserPolicy", "alice-inline",
                   {"user": "alice", "policy": f.doc({"Effect": "Allow", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::b/*"})})
    assert _only(inline, "iam-no-user-policies") == [
        "UserPolicy alice-inline attaches a policy to an IAM user; attach it to a role and let the user assume it."]


def test_a_conditional_deny_before_the_unconditional_one_is_skipped_not_final() -> None:
    conditional = {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*",
                   "Condition": {"Bool": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}}}
    unconditional = {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret",
                     "Resource": "arn:aws:secretsmanager:*:*:secret:payments/production/*"}
    allow_first = {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret",
                   "Resource": f.secret_arn("payments/production/a")}
    policy = _policy("x-ci", allow_first, conditional, unconditional)
    assert _only(policy, RULE) == []


def test_an_escalation_after_a_deny_is_found_and_listed() -> None:
    policy = _policy("x-ci", DENY_FIRST, {"Effect": "Allow", "Action": ["iam:PutRolePolicy", "iam:CreateAccessKey"],
                                         "Resource": "arn:aws:iam::123456789012:role/x"})
    assert _only(policy, "iam-no-privilege-escalation") == [
        "Policy x-ci statement #2 allows privilege-escalation action(s) iam:PutRolePolicy, iam:CreateAccessKey; "
        "remove them (grant iam:PassRole only on named role ARNs)."]


def test_isolation_without_a_known_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_STACK")
    read = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
            "Resource": f.secret_arn("payments/staging/a")}
    untagged = _policy("x-read", read)
    assert _only(untagged, "iam-environment-isolation") == [
        "Policy x-read: cannot tell this stack's environment; set policy config 'environment', name the stack "
        "after it, or tag the policy environment=<env>."]
    # The environment from the tag, no app: any app's secrets of that environment, nothing else.
    tagged = _policy("x-read", read, {**read, "Resource": f.secret_arn("billing/production/b")},
                     {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                     tags={"environment": "production"})
    assert _only(tagged, "iam-environment-isolation") == [
        f"Policy x-read statement #1 allows secret '{f.secret_arn('payments/staging/a')}' outside this stack's "
        "'<app>/production/' prefix; grant only this environment's secrets.",
        "Policy x-read statement #3 allows Secrets Manager actions on every secret ('*'); restrict Resource to "
        "secrets under '<app>/production/'.",
    ]
    nested = _policy("x-read", {**read, "Resource": f.secret_arn("production/payments/a")},
                     tags={"environment": "production"})
    assert len(_only(nested, "iam-environment-isolation")) == 1, "the environment is the second segment"


def test_lint_findings_and_their_config(monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = _policy("x-ci", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValues",
                               "Resource": f.secret_arn("payments/production/a")})
    found = _only(unknown, "iam-policy-lint")
    assert len(found) == 1 and found[0].startswith("Policy x-ci: parliament UNKNOWN_ACTION: ")
    assert found[0].endswith("; fix the document.")
    ignored = resource_findings(_policies(), [unknown], {"iam-policy-lint": {"ignoreFindings": ["UNKNOWN_ACTION"]}})
    assert [p for p, _, _ in ignored if p == "iam-policy-lint"] == []
    broken = f.res("aws:iam/policy:Policy", "x-ci", {"policy": "{not json"})
    (message,) = _only(broken, "iam-policy-lint")
    assert message.startswith("Policy x-ci: policy is not valid JSON (") and message.endswith(
        "); pass a JSON policy document.")
    # A finding with structured detail is shown as JSON.
    mismatch = _policy("x-ci", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                "Resource": "arn:aws:secretsmanager:eu-west-1:123456789012:payments"})
    assert _only(mismatch, "iam-policy-lint") == [
        'Policy x-ci: parliament RESOURCE_MISMATCH: [{"action": "secretsmanager:GetSecretValue", "required_format": '
        '"arn:*:secretsmanager:*:*:secret:*"}]; fix the document.']
    # parliament raises on a principal that is not a string (AWS documents account ids as strings): a violation
    # that says so, not a failed preview.
    numeric = _policy("x-ci", {"Effect": "Allow", "Principal": {"AWS": 123456789012},
                               "Action": "secretsmanager:GetSecretValue",
                               "Resource": f.secret_arn("payments/production/a")})
    assert _only(numeric, "iam-policy-lint") == [
        "Policy x-ci: parliament cannot read the document (TypeError: expected string or bytes-like object, got "
        "'int'); fix the document."]


# --- the secret rules' edges -------------------------------------------------------------------------


def _secret(name: str | None, tags: dict | None = None, **inputs: object) -> CollectedResource:
    props: dict = {"description": "d", "kmsKeyId": f.KEY_ARN, "recoveryWindowInDays": 30, **inputs}
    if name is not None:
        props["name"] = name
    props["tags"] = tags if tags is not None else {}
    return f.res("aws:secretsmanager/secret:Secret", "s", props, protect=True)


def test_a_fractional_minimum_window_is_shown_as_it_is() -> None:
    got = resource_findings(_policies(), [_secret("payments/production/a", recoveryWindowInDays=7)],
                            {"secret-recovery-window": {"minRecoveryWindowDays": 7.5}})
    assert [m for p, _, m in got if p == "secret-recovery-window"] == [
        "secret s has recoveryWindowInDays 7 days, below the 7.5-day minimum; set recovery_window_in_days to at "
        "least 7.5 (at most 30)."]


def test_names_when_the_stack_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_STACK")

    def names(secret: CollectedResource) -> list[str]:
        return [m for p, _, m in findings([secret]) if p == "secret-name-convention"]

    assert names(_secret("anyapp/anyenv/any-name")) == [], "no app, no environment: any three segments"
    assert names(_secret("flat")) == [
        "secret name 'flat' does not match '<app>/<environment>/<name>'; rename the secret to "
        "'<app>/<environment>/<name>'."]
    assert names(_secret("payments/production/a", {"environment": "staging", "app": "payments"})) == [
        "secret name 'payments/production/a' does not match 'payments/staging/<name>'; rename the secret to "
        "'payments/staging/<name>'."]
    assert names(_secret("billing/staging/a", {"app": "payments"})) == [
        "secret name 'billing/staging/a' does not match 'payments/<environment>/<name>'; rename the secret to "
        "'payments/<environment>/<name>'."]
    assert names(_secret("payments/qa/a", {"app": "payments"})) == []


def test_required_tags_come_from_the_rule_config() -> None:
    secret = _secret("payments/production/a", {"app": "payments", "environment": "production", "class": "critical",
                                               "owner": "team", "rotation": "30d"})
    got = resource_findings(_policies(), [secret], {"secret-required-tags": {"requiredTags": ["team", "cost", "app"]}})
    assert [m for p, _, m in got if p == "secret-required-tags"] == [
        "secret s is missing required tag(s) team, cost; add them (required: team, cost, app)."]


@pytest.mark.parametrize(("window", "minimum", "flagged"), [
    (7, 7, False), (6, 7, True), (None, 30, False), (None, 30.5, True), (0, 1, True),
])
def test_the_recovery_window_against_its_minimum(window: int | None, minimum: float, flagged: bool) -> None:
    """An unset window is AWS's default of 30 days; a window equal to the minimum passes."""
    secret = _secret("payments/production/a", recoveryWindowInDays=window)
    if window is None:
        secret = f.res(secret.type, secret.name, {k: v for k, v in secret.inputs.items()
                                                  if k != "recoveryWindowInDays"}, protect=True)
    got = resource_findings(_policies(), [secret], {"secret-recovery-window": {"minRecoveryWindowDays": minimum}})
    assert bool([m for p, _, m in got if p == "secret-recovery-window"]) is flagged


def test_a_production_secret_by_tag_must_be_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_STACK")
    tagged = f.res("aws:secretsmanager/secret:Secret", "s", {"name": "payments/production/a",
                                                             "tags": {"environment": "production"}})
    assert [m for p, _, m in findings([tagged]) if p == "secret-production-protected"] == [
        "production secret s is not protected from deletion; create it with ResourceOptions(protect=True) "
        "(retain_on_delete is not visible to policies, so protect is required)."]
    staging = f.res("aws:secretsmanager/secret:Secret", "s", {"name": "payments/staging/a",
                                                              "tags": {"environment": "staging"}})
    assert [p for p, _, _ in findings([staging]) if p == "secret-production-protected"] == []


def test_the_programs_production_ci_policy_needs_its_unconditional_deny() -> None:
    """The program's own CI policy keeps its conditional Denies (no deletion without recovery, no short
    window) when the unconditional one is removed: the rule must still fire."""
    from dataclasses import replace

    from tests.conftest import run_stack

    report = run_stack("production")
    (ci,) = [r for r in report.run.resources
             if r.type == "aws:iam/policy:Policy" and (r.inputs.get("tags") or {}).get("access") == "ci"]
    assert _only(ci, RULE) == []
    document = json.loads(ci.inputs["policy"])
    sids = [s["Sid"] for s in document["Statement"]]
    assert {"DenyDeletingProductionSecrets", "DenyDeletingWithoutRecovery", "DenyShortRecoveryWindow"} <= set(sids)
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != "DenyDeletingProductionSecrets"]
    stripped = replace(ci, inputs={**ci.inputs, "policy": json.dumps(document)})
    assert _only(stripped, RULE) == [EXPECTED["iam-ci-no-deny"][0].replace("deployer-ci", ci.name)]


def _rotator_env(variables: dict[str, str]) -> list[tuple[str, str]]:
    stack = f.set_input("rotator", "environment", {"variables": variables})(f.base_stack())
    return [(p, r) for p, r in where(stack) if p == "lambda-env-no-secrets"]


def test_the_rotation_targets_acl_of_the_readme_is_no_token() -> None:
    """A Redis ACL the catalog gives (`rotation.acl`) is rules, not a key: as a whole it scores above
    4 bits per character, word by word it does not (relaybox's trial: production failed on it)."""
    import secrets as random_source

    for acl in ("~app:* +@all -@dangerous", "~relaybox:queue:* &relaybox:* +@all -@dangerous -@admin"):
        targets = json.dumps({"relaybox/production/redis": {"acl": acl, "strategy": "redis-acl"}})
        assert _rotator_env({"ROTATION_TARGETS": targets}) == []
    # A token is still found inside a sentence, a JSON leaf or a PEM-like block of lines.
    token = random_source.token_urlsafe(24)
    assert _rotator_env({"UPSTREAM": f"Bearer {token}"}) == [("lambda-env-no-secrets", "rotator")]
    assert _rotator_env({"ROTATION_TARGETS": json.dumps({"a": {"acl": f"~x:* >{token}"}})}) \
        == [("lambda-env-no-secrets", "rotator")]
    block = "\n".join(random_source.token_urlsafe(48)[:64] for _ in range(3))
    assert _rotator_env({"KEY_MATERIAL_FILE": f"-----BEGIN KEY-----\n{block}\n-----END KEY-----"}) \
        == [("lambda-env-no-secrets", "rotator")]


def test_a_catalog_template_in_the_rotation_targets_is_judged_by_its_literal_text() -> None:
    """The function is sent the catalog's templates (components.rotation.parameters): their `{key}`s are names,
    and a template of many short names scores above 4 bits per character as a whole. Its literal text is still
    tested: a token written into a template is found beside the placeholders."""
    import secrets as random_source

    for template in ("postgresql://{username}:{password}@{host}:{port}/{dbname}[?sslmode={sslmode}]",
                     "redis://[:{password}@]{host}:{port}[/{db}]"):
        targets = json.dumps({"relaybox/production/db": {"templates": {"url": template}}})
        assert _rotator_env({"ROTATION_TARGETS": targets}) == []
    token = random_source.token_urlsafe(24)
    targets = json.dumps({"relaybox/production/db": {"templates": {"url": f"redis://{{username}}:{token}@{{host}}"}}})
    assert _rotator_env({"ROTATION_TARGETS": targets}) == [("lambda-env-no-secrets", "rotator")]
