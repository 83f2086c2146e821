"""The access matrix's evaluator (preview/access_matrix.py) on small hand-made requests: AWS's policy
evaluation logic ("Policy evaluation logic", IAM user guide) one rule at a time, with the outcome each
rule gives. tests/access cross-checks the same evaluator against an independent simulator on the
program's real policies; these pin the rules themselves, including the ones the program's policies
happen not to reach (an Allow never overrides a Deny, cross-account needs both sides, a key policy is
the root of trust).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from preview.access_matrix import (
    OPERATIONS,
    AccessIndex,
    AccessModel,
    Decision,
    KeyInfo,
    NamedPolicy,
    Outcome,
    Principal,
    Request,
    SecretInfo,
    UnsupportedPolicy,
    cell_requests,
    collect,
    combine,
    evaluate,
    evaluate_cell,
    kms_request,
    matrix,
    render,
    requests,
    secret_request,
    wildcard_match,
)
from preview.model import UNKNOWN, CollectedResource

ACCOUNT = "123456789012"
OTHER = "210987654321"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-app"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shop/staging/db-AbCdEf"
READ = "secretsmanager:GetSecretValue"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": READ, "Resource": SECRET, **extra}


def deny(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": READ, "Resource": SECRET, **extra}


def request(identity: list[dict[str, Any]] | None = None, resource: dict[str, Any] | None = None, *,
            principal: str = ROLE, action: str = READ, target: str = SECRET, account: str = ACCOUNT,
            context: dict[str, Any] | None = None, service: str = "secretsmanager") -> Request:
    return Request(
        principal=principal, action=action, resource=target, resource_account=account,
        context=context if context is not None else {"aws:PrincipalAccount": principal.split(":")[4]},
        identity_policies=tuple(NamedPolicy(f"p{i}", f"arn:aws:iam::{ACCOUNT}:policy/p{i}", d)
                                for i, d in enumerate(identity or [])),
        resource_policy=resource, service=service,
    )


# --- identity policies -------------------------------------------------------------------------------

@pytest.mark.parametrize(("identity", "outcome"), [
    ([], "ImplicitlyDenied"),
    ([doc(allow())], "Allowed"),
    ([doc(deny())], "ExplicitlyDenied"),
    ([doc(allow(), deny())], "ExplicitlyDenied"),
    ([doc(deny(), allow())], "ExplicitlyDenied"),
    ([doc(allow()), doc(deny())], "ExplicitlyDenied"),
    ([doc(allow(Action="secretsmanager:Get*"))], "Allowed"),
    ([doc(allow(Action="SecretsManager:getsecretvalue"))], "Allowed"),
    ([doc(allow(Action=["secretsmanager:DescribeSecret", READ]))], "Allowed"),
    ([doc(allow(Action="secretsmanager:DescribeSecret"))], "ImplicitlyDenied"),
    ([doc(allow(Action="secretsmanager:GetSecretValu?"))], "Allowed"),
    ([doc(allow(Action="secretsmanager:GetSecretValue?"))], "ImplicitlyDenied"),
    ([doc({"Effect": "Allow", "NotAction": "secretsmanager:DeleteSecret", "Resource": "*"})], "Allowed"),
    ([doc({"Effect": "Allow", "NotAction": "secretsmanager:Get*", "Resource": "*"})], "ImplicitlyDenied"),
    ([doc(allow(Resource="arn:aws:secretsmanager:*:*:secret:shop/staging/*"))], "Allowed"),
    ([doc(allow(Resource="arn:aws:secretsmanager:*:*:secret:SHOP/staging/*"))], "ImplicitlyDenied"),
    ([doc(allow(Resource="arn:aws:secretsmanager:*:*:secret:shop/production/*"))], "ImplicitlyDenied"),
    ([doc(allow(Resource=SECRET.removesuffix("AbCdEf") + "??????"))], "Allowed"),
    ([doc(allow(Resource=SECRET.removesuffix("AbCdEf") + "?????"))], "ImplicitlyDenied"),
    ([doc(allow(), {"Effect": "Deny", "Action": READ, "NotResource": SECRET})], "Allowed"),
    ([doc(allow(), {"Effect": "Deny", "Action": READ, "NotResource": "arn:aws:s3:::x"})], "ExplicitlyDenied"),
    ([{"Statement": allow()}], "Allowed"),
], ids=lambda v: str(v)[:60] if isinstance(v, str) else None)
def test_identity_policies(identity: list[dict[str, Any]], outcome: str) -> None:
    assert evaluate(request(identity)) == outcome


# --- conditions ------------------------------------------------------------------------------------

TAG = "aws:ResourceTag/environment"


@pytest.mark.parametrize(("condition", "context", "applies"), [
    ({"StringEquals": {TAG: "staging"}}, {TAG: "staging"}, True),
    ({"StringEquals": {TAG: "staging"}}, {TAG: "production"}, False),
    ({"StringEquals": {TAG: "staging"}}, {}, False),
    ({"StringEquals": {"AWS:RESOURCETAG/Environment": "staging"}}, {TAG: "staging"}, True),
    ({"StringEquals": {TAG: ["production", "staging"]}}, {TAG: "staging"}, True),
    ({"StringEquals": {TAG: "staging"}}, {TAG: ("production", "staging")}, True),
    ({"StringNotEquals": {TAG: "staging"}}, {TAG: "staging"}, False),
    ({"StringNotEquals": {TAG: "staging"}}, {TAG: "production"}, True),
    ({"StringNotEquals": {TAG: "staging"}}, {}, True),
    ({"StringNotEquals": {TAG: ["a", "b"]}}, {TAG: "b"}, False),
    ({"StringEqualsIgnoreCase": {TAG: "STAGING"}}, {TAG: "staging"}, True),
    ({"StringEquals": {TAG: "STAGING"}}, {TAG: "staging"}, False),
    ({"StringLike": {TAG: "stag*"}}, {TAG: "staging"}, True),
    ({"StringLike": {TAG: "prod*"}}, {TAG: "staging"}, False),
    ({"StringNotLike": {TAG: "prod*"}}, {TAG: "staging"}, True),
    ({"StringNotLike": {TAG: "stag*"}}, {TAG: "staging"}, False),
    ({"StringNotLike": {TAG: "stag*"}}, {}, True),
    ({"StringEqualsIfExists": {TAG: "staging"}}, {}, True),
    ({"StringEqualsIfExists": {TAG: "staging"}}, {TAG: "production"}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, True),
    ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
    ({"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}, {}, True),
    ({"NumericLessThan": {"n": "7"}}, {"n": "6"}, True),
    ({"NumericLessThan": {"n": "7"}}, {"n": "7"}, False),
    ({"NumericLessThanEquals": {"n": "7"}}, {"n": "7"}, True),
    ({"NumericLessThanEquals": {"n": "7"}}, {"n": "8"}, False),
    ({"NumericGreaterThan": {"n": "7"}}, {"n": "7"}, False),
    ({"NumericGreaterThan": {"n": "7"}}, {"n": "8"}, True),
    ({"NumericGreaterThanEquals": {"n": "7"}}, {"n": "7"}, True),
    ({"NumericGreaterThanEquals": {"n": "7"}}, {"n": "6"}, False),
    ({"NumericEquals": {"n": 30}}, {"n": "30.0"}, True),
    ({"NumericEquals": {"n": "30"}}, {"n": "31"}, False),
    ({"NumericNotEquals": {"n": "30"}}, {"n": "31"}, True),
    ({"NumericNotEquals": {"n": "30"}}, {"n": "30"}, False),
    ({"NumericNotEquals": {"n": "30"}}, {}, True),
    ({"NumericLessThan": {"n": "7"}}, {}, False),
    ({"ArnEquals": {"aws:PrincipalArn": ROLE}}, {"aws:PrincipalArn": ROLE}, True),
    ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/shop-*"}}, {"aws:PrincipalArn": ROLE}, True),
    ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/*"}}, {"aws:PrincipalArn": ROLE}, False),
    ({"ArnNotEquals": {"aws:PrincipalArn": ROLE}}, {"aws:PrincipalArn": ROLE}, False),
    ({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:*"}}, {"aws:PrincipalArn": ROLE}, True),
    ({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:*"}}, {}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": ROLE}}, {}, True),
    ({"Null": {TAG: "true"}}, {}, True),
    ({"Null": {TAG: "true"}}, {TAG: "x"}, False),
    ({"Null": {TAG: "false"}}, {TAG: "x"}, True),
    ({"Null": {TAG: "false"}}, {}, False),
    ({"StringEquals": {TAG: "staging"}, "Bool": {"b": "true"}}, {TAG: "staging", "b": "false"}, False),
    ({"StringEquals": {TAG: "staging", "other": "x"}}, {TAG: "staging", "other": "x"}, True),
    ({"StringEquals": {TAG: "staging", "other": "x"}}, {TAG: "staging", "other": "y"}, False),
])
def test_conditions(condition: dict[str, Any], context: dict[str, Any], applies: bool) -> None:
    outcome = evaluate(request([doc(allow(Condition=condition))], context=context))
    assert outcome == ("Allowed" if applies else "ImplicitlyDenied")
    # The same condition on a Deny: it applies exactly when the Allow did.
    outcome = evaluate(request([doc(allow(), deny(Condition=condition))], context=context))
    assert outcome == ("ExplicitlyDenied" if applies else "Allowed")


@pytest.mark.parametrize(("statement", "what"), [
    (allow(Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}), "condition operator DateLessThan"),
    (allow(Condition={"DateLessThanIfExists": {"aws:CurrentTime": "2030-01-01"}}),
     "condition operator DateLessThanIfExists"),
    (allow(Condition={"ForAnyValue:DateLessThan": {"aws:CurrentTime": "2030-01-01"}}),
     "condition operator ForAnyValue:DateLessThan"),
    (allow(Condition={"ForAllValues:DateLessThan": {"aws:CurrentTime": "2030-01-01"}}),
     "condition operator ForAllValues:DateLessThan"),
    # IAM allows no IfExists on Null; an operator qualified twice is no operator.
    (allow(Condition={"NullIfExists": {"aws:TagKeys": "true"}}), "condition operator NullIfExists"),
    (allow(Condition={"ForAnyValue:NullIfExists": {"aws:TagKeys": "true"}}),
     "condition operator ForAnyValue:NullIfExists"),
    (allow(Condition={"ForAnyValue:ForAllValues:StringEquals": {"aws:TagKeys": "a"}}),
     "condition operator ForAnyValue:ForAllValues:StringEquals"),
    (allow(NotPrincipal={"AWS": ROLE}), "statement element NotPrincipal"),
])
def test_what_it_does_not_know_it_refuses(statement: dict[str, Any], what: str) -> None:
    context = {"aws:CurrentTime": "2026-01-01", "aws:TagKeys": "a"}
    with pytest.raises(UnsupportedPolicy) as caught:
        evaluate(request([doc(statement)], context=context))
    assert str(caught.value) == what and type(caught.value) is UnsupportedPolicy


@pytest.mark.parametrize(("operator", "requested", "outcome"), [
    # IAM: ForAllValues holds when every requested value is allowed, and when none is requested.
    ("ForAllValues:StringEquals", ("a",), "Allowed"),
    ("ForAllValues:StringEquals", ("a", "b"), "Allowed"),
    ("ForAllValues:StringEquals", ("a", "z"), "ImplicitlyDenied"),
    ("ForAllValues:StringEquals", None, "Allowed"),
    # ForAnyValue holds when at least one requested value is allowed, never when none is requested.
    ("ForAnyValue:StringEquals", ("z", "a"), "Allowed"),
    ("ForAnyValue:StringEquals", ("z",), "ImplicitlyDenied"),
    ("ForAnyValue:StringEquals", None, "ImplicitlyDenied"),
])
def test_set_operators(operator: str, requested: tuple[str, ...] | None, outcome: str) -> None:
    """The CI policy pins ReplicateSecretToRegions with ForAllValues:StringEquals on AddReplicaRegions."""
    statement = allow(Condition={operator: {"secretsmanager:AddReplicaRegions": ["a", "b"]}})
    context = {} if requested is None else {"secretsmanager:AddReplicaRegions": requested}
    assert evaluate(request([doc(statement)], context=context)) == outcome


def test_an_unknown_operator_on_an_absent_key_is_refused_too() -> None:
    with pytest.raises(UnsupportedPolicy) as caught:
        evaluate(request([doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2030-01-01"}}))], context={}))
    assert str(caught.value) == "condition operator DateGreaterThan"


# --- resource policies -------------------------------------------------------------------------------

@pytest.mark.parametrize(("identity", "resource", "principal", "outcome"), [
    # Same account: either side's Allow suffices; any Deny wins.
    ([], doc(allow(Principal={"AWS": ROLE})), ROLE, "Allowed"),
    ([], doc(allow(Principal="*")), ROLE, "Allowed"),
    ([], doc(allow(Principal={"AWS": "*"})), ROLE, "Allowed"),
    ([], doc(allow(Principal={"AWS": [f"arn:aws:iam::{ACCOUNT}:role/other", ROLE]})), ROLE, "Allowed"),
    ([], doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"})), ROLE, "ImplicitlyDenied"),
    ([], doc(allow(Principal={"Service": "lambda.amazonaws.com"})), ROLE, "ImplicitlyDenied"),
    ([], doc(allow()), ROLE, "ImplicitlyDenied"),
    ([], doc(allow(Principal={"AWS": ROLE}, Action="secretsmanager:DescribeSecret")), ROLE, "ImplicitlyDenied"),
    ([doc(allow())], doc(deny(Principal={"AWS": "*"})), ROLE, "ExplicitlyDenied"),
    ([doc(allow())], doc(deny(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"})), ROLE, "Allowed"),
    ([doc(allow())], doc(deny(Principal={"AWS": ACCOUNT})), ROLE, "ExplicitlyDenied"),
    ([doc(allow())], doc(allow(Principal={"AWS": ROLE}), deny(Principal="*")), ROLE, "ExplicitlyDenied"),
    ([doc(allow())], {"Statement": deny(Principal="*", Condition={
        "StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}})}, ROLE, "Allowed"),
    # Account principal: delegates to the identity policies of that account.
    ([], doc(allow(Principal={"AWS": ACCOUNT})), ROLE, "ImplicitlyDenied"),
    ([], doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})), ROLE, "ImplicitlyDenied"),
    ([doc(allow())], doc(allow(Principal={"AWS": ACCOUNT})), ROLE, "Allowed"),
    # Another account's principal needs both its identity policy and the resource policy.
    ([doc(allow())], None, f"arn:aws:iam::{OTHER}:role/x", "ImplicitlyDenied"),
    ([], doc(allow(Principal={"AWS": f"arn:aws:iam::{OTHER}:role/x"})), f"arn:aws:iam::{OTHER}:role/x",
     "ImplicitlyDenied"),
    ([doc(allow())], doc(allow(Principal={"AWS": f"arn:aws:iam::{OTHER}:role/x"})), f"arn:aws:iam::{OTHER}:role/x",
     "Allowed"),
    ([doc(allow())], doc(allow(Principal={"AWS": OTHER})), f"arn:aws:iam::{OTHER}:role/x", "Allowed"),
    ([doc(allow())], doc(allow(Principal={"AWS": f"arn:aws:iam::{OTHER}:root"})), f"arn:aws:iam::{OTHER}:role/x",
     "Allowed"),
], ids=lambda v: None)
def test_resource_policies(identity: list[dict[str, Any]], resource: dict[str, Any] | None, principal: str,
                           outcome: str) -> None:
    assert evaluate(request(identity, resource, principal=principal)) == outcome


@pytest.mark.parametrize(("identity", "key_policy", "outcome"), [
    # A key policy is the root of trust: an IAM Allow counts only where the key policy names the account.
    ([doc(allow(Action="kms:Decrypt", Resource="*"))], doc(), "ImplicitlyDenied"),
    ([doc(allow(Action="kms:Decrypt", Resource="*"))],
     doc(allow(Action="kms:*", Resource="*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})), "Allowed"),
    ([], doc(allow(Action="kms:*", Resource="*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
     "ImplicitlyDenied"),
    ([], doc(allow(Action="kms:Decrypt", Resource="*", Principal={"AWS": ROLE})), "Allowed"),
    ([doc(deny(Action="kms:Decrypt", Resource="*"))],
     doc(allow(Action="kms:Decrypt", Resource="*", Principal={"AWS": ROLE})), "ExplicitlyDenied"),
])
def test_key_policies(identity: list[dict[str, Any]], key_policy: dict[str, Any], outcome: str) -> None:
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k"
    assert evaluate(request(identity, key_policy, action="kms:Decrypt", target=key, service="kms")) == outcome


def test_unknown_statement_elements_are_refused() -> None:
    with pytest.raises(UnsupportedPolicy) as caught:
        evaluate(request([doc(allow(Principl={"AWS": "*"}))]))
    assert str(caught.value) == "statement element Principl"


def test_wildcards() -> None:
    assert wildcard_match("a*c", "abbbc") and wildcard_match("a*c", "ac") and not wildcard_match("a*c", "abd")
    assert wildcard_match("a?c", "abc") and not wildcard_match("a?c", "ac") and not wildcard_match("a?c", "abbc")
    assert wildcard_match("a.c", "a.c") and not wildcard_match("a.c", "abc"), "only * and ? are special"
    assert not wildcard_match("abc", "ABC") and wildcard_match("abc", "ABC", ignore_case=True)
    assert wildcard_match("a*", "a\nb"), "a run of any characters, line breaks included"
    assert not wildcard_match("abc", "abcd") and not wildcard_match("bc", "abc"), "whole value"


# --- requests and the rendered matrix ----------------------------------------------------------------

PRINCIPAL = Principal(arn=ROLE, name="shop-app",
                      policies=(NamedPolicy("read", f"arn:aws:iam::{ACCOUNT}:policy/read", doc(allow())),))


def test_a_secret_request_carries_the_context_aws_sends() -> None:
    secret = SecretInfo(name="shop/staging/db", arn=SECRET, region="eu-west-1", tags={"environment": "staging"},
                        resource_policy=doc(), kms_key_id="k", recovery_window_days=7)
    got = secret_request(PRINCIPAL, secret, "read")
    assert (got.principal, got.action, got.resource, got.resource_account, got.service) == (
        ROLE, READ, SECRET, ACCOUNT, "secretsmanager")
    assert dict(got.context) == {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": ROLE,
                                 "aws:PrincipalIsAWSService": "false", TAG: "staging"}
    assert got.identity_policies == PRINCIPAL.policies and got.resource_policy == doc()
    delete = secret_request(PRINCIPAL, secret, "delete", {"extra": "1"})
    assert delete.action == "secretsmanager:DeleteSecret"
    assert delete.context["secretsmanager:RecoveryWindowInDays"] == "7"
    assert delete.context["secretsmanager:ForceDeleteWithoutRecovery"] == "false"
    assert delete.context["extra"] == "1"
    assert OPERATIONS == {"read": READ, "write": "secretsmanager:PutSecretValue",
                          "rotate": "secretsmanager:RotateSecret", "delete": "secretsmanager:DeleteSecret"}
    simulation = delete.to_simulation()
    assert simulation["request"] == {"principal": ROLE, "action": "secretsmanager:DeleteSecret",
                                     "resource": {"resource": SECRET, "accountId": ACCOUNT},
                                     "contextVariables": dict(delete.context)}
    assert simulation["identityPolicies"] == [{"name": "read", "policy": doc(allow())}]
    assert simulation["resourcePolicy"] == doc()
    assert simulation["serviceControlPolicies"] == [] and simulation["resourceControlPolicies"] == []


def test_a_kms_request_through_secrets_manager_or_direct() -> None:
    key = KeyInfo(arn=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k", region="eu-west-1", environment="staging",
                  policy=doc())
    via = kms_request(PRINCIPAL, key, "kms:Decrypt", via_service="secretsmanager.eu-west-1.amazonaws.com")
    assert via.context["kms:ViaService"] == "secretsmanager.eu-west-1.amazonaws.com"
    assert via.context["kms:CallerAccount"] == ACCOUNT and via.service == "kms" and via.resource_account == ACCOUNT
    direct = kms_request(PRINCIPAL, key, "kms:Decrypt", via_service=None, extra_context={"x": "y"})
    assert "kms:ViaService" not in direct.context and direct.context["x"] == "y"
    assert "resourcePolicy" in direct.to_simulation()


def test_the_rendered_matrix() -> None:
    outcomes: tuple[Outcome, ...] = ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied", "ExplicitlyDenied")
    decisions = [
        Decision(ROLE, "shop/staging/db", op, outcome) for op, outcome in zip(OPERATIONS, outcomes, strict=True)
    ] + [Decision(f"arn:aws:iam::{ACCOUNT}:role/ci", "shop/staging/a", "read", "Allowed")]
    assert render(decisions) == (
        "Access matrix (A allowed, - implicitly denied, D explicitly denied):\n"
        "principal  secret           read   write  rotate delete\n"
        "ci         shop/staging/a   A      ?      ?      ?\n"
        "shop-app   shop/staging/db  A      -      D      D\n"
    )
    assert render([]) == "Access matrix: no principal is given any access\n"


# --- collect(): what the matrix is built from ------------------------------------------------------



def _r(type_: str, name: str, parent: str | None, inputs: dict[str, Any]) -> CollectedResource:
    return CollectedResource(urn=f"urn:{type_}::{name}", type=type_, name=name, parent=parent, protect=False,
                             custom=True, inputs=inputs)


KEY_DOC = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/shop-app"},
               "Action": "kms:Decrypt", "Resource": "*"},
              {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]},
               "Action": "kms:*", "Resource": "*"},
              {"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:*",
               "Resource": "*"},
              {"Effect": "Allow", "Principal": "*", "Action": "kms:Describe*", "Resource": "*"})
READ_DOC = doc(allow(Resource="arn:aws:secretsmanager:*:*:secret:shop/staging/*"))
STACK = [
    _r("aws:kms/key:Key", "kms-key", "kms", {"policy": KEY_DOC, "tags": {"environment": "staging"}}),
    _r("aws:kms/alias:Alias", "kms-alias", "kms", {"targetKeyId": "1234abcd"}),
    _r("aws:kms/key:Key", "replica-key", "replica",
       {"policy": KEY_DOC, "region": "eu-central-1", "tags": {"environment": "staging"}}),
    _r("aws:kms/alias:Alias", "replica-alias", "replica", {"targetKeyId": UNKNOWN}),
    _r("aws:kms/key:Key", "unknown-key", "other", {"policy": UNKNOWN}),
    _r("aws:secretsmanager/secret:Secret", "db-secret", "db",
       {"name": "shop/staging/db", "tags": {"environment": "staging"}, "kmsKeyId": "k-1",
        "recoveryWindowInDays": 7.0}),
    _r("aws:secretsmanager/secretPolicy:SecretPolicy", "db-policy", "db",
       {"secretArn": SECRET, "policy": json.dumps(doc(deny(Principal="*")))}),
    _r("aws:secretsmanager/secret:Secret", "api-secret", "api", {"tags": {}}),
    _r("aws:secretsmanager/secretPolicy:SecretPolicy", "api-policy", "api", {"secretArn": UNKNOWN, "policy": UNKNOWN}),
    _r("aws:iam/policy:Policy", "read-policy", None, {"name": "shop-read", "path": "/team/", "policy": READ_DOC}),
    _r("aws:iam/policy:Policy", "other-policy", None, {"policy": json.dumps(READ_DOC)}),
    _r("aws:iam/policy:Policy", "pending-policy", None, {"name": "pending", "policy": UNKNOWN}),
    _r("aws:iam/role:Role", "rotator-role", None, {"name": "shop-rotator"}),
    _r("aws:iam/role:Role", "unnamed-role", None, {"name": UNKNOWN}),
    _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a1", None,
       {"role": "shop-app", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/team/shop-read"}),
    _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a2", None,
       {"role": "shop-app", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/other-policy"}),
    _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a3", None,
       {"role": "shop-app", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a4", None, {"role": UNKNOWN, "policyArn": "x"}),
]


def test_collect_reads_keys_secrets_and_principals() -> None:
    model = collect(STACK, account_id=ACCOUNT, region="eu-west-1")
    assert (model.account_id, model.region) == (ACCOUNT, "eu-west-1")
    assert [(k.arn, k.region, k.environment) for k in model.keys] == [
        (f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/replica-key", "eu-central-1", "staging"),
        (f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd", "eu-west-1", "staging"),
    ]
    assert model.keys[1].policy == KEY_DOC
    api, db = model.secrets
    assert (db.name, db.arn, db.region, db.kms_key_id, db.recovery_window_days, db.environment) == (
        "shop/staging/db", SECRET, "eu-west-1", "k-1", 7, "staging")
    assert db.resource_policy == doc(deny(Principal="*"))
    assert (api.name, api.arn, api.resource_policy, api.kms_key_id, api.recovery_window_days) == (
        "api-secret", f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:api-secret-AbCdEf", None, "", None)
    assert [p.name for p in model.principals] == ["shop-app", "shop-rotator"]
    app, rotator = model.principals
    assert app.arn == f"arn:aws:iam::{ACCOUNT}:role/team/shop-app", "the key policy's ARN keeps the role's path"
    assert [(p.name, p.arn) for p in app.policies] == [
        ("other-policy", f"arn:aws:iam::{ACCOUNT}:policy/other-policy"),
        ("shop-read", f"arn:aws:iam::{ACCOUNT}:policy/team/shop-read"),
    ]
    assert app.policies[1].document == READ_DOC and app.policies[0].document == READ_DOC
    assert app.external_policies == ("arn:aws:iam::aws:policy/ReadOnlyAccess",)
    assert (rotator.arn, rotator.policies, rotator.external_policies) == (
        f"arn:aws:iam::{ACCOUNT}:role/shop-rotator", (), ())
    assert model.principal("shop-app") is app and model.principal(rotator.arn) is rotator
    with pytest.raises(KeyError):
        model.principal("nobody")
    assert model.key_of(db) is model.keys[1], "no key by that ARN: the environment's key in its region"


def test_the_key_of_a_secret_by_arn_or_by_environment_and_region() -> None:
    model = collect(STACK, account_id=ACCOUNT, region="eu-west-1")
    primary = model.keys[1]
    by_arn = SecretInfo(name="a", arn=SECRET, region="us-east-1", tags={}, resource_policy=None,
                        kms_key_id=primary.arn, recovery_window_days=None)
    assert model.key_of(by_arn) is primary
    by_place = SecretInfo(name="b", arn=SECRET, region="eu-central-1", tags={"environment": "staging"},
                          resource_policy=None, kms_key_id="alias/other", recovery_window_days=None)
    assert model.key_of(by_place) is model.keys[0]
    elsewhere = SecretInfo(name="c", arn=SECRET, region="eu-central-1", tags={"environment": "production"},
                           resource_policy=None, kms_key_id="", recovery_window_days=None)
    assert model.key_of(elsewhere) is None


def test_a_policy_that_is_not_a_document_is_refused() -> None:
    broken = [_r("aws:iam/policy:Policy", "bad", None, {"name": "bad", "policy": "[1, 2]"})]
    with pytest.raises(UnsupportedPolicy) as caught:
        collect(broken, account_id=ACCOUNT, region="eu-west-1")
    assert str(caught.value) == "policy bad: policy is not a JSON document"


def test_the_matrix_covers_every_principal_secret_and_operation() -> None:
    decisions = matrix(STACK, account_id=ACCOUNT, region="eu-west-1")
    assert len(decisions) == 2 * 2 * 4
    cells = {(d.principal.rsplit("/", 1)[1], d.secret, d.operation): d.decision for d in decisions}
    assert cells["shop-app", "shop/staging/db", "read"] == "ExplicitlyDenied", "the secret's Deny wins"
    assert cells["shop-app", "api-secret", "read"] == "ImplicitlyDenied", "outside the policy's pattern"
    assert cells["shop-rotator", "shop/staging/db", "read"] == "ExplicitlyDenied"
    assert cells["shop-rotator", "shop/staging/db", "write"] == "ImplicitlyDenied", "the Deny names only reads"
    assert cells["shop-rotator", "api-secret", "delete"] == "ImplicitlyDenied"


def test_collect_edges() -> None:
    distinct = SECRET.replace("-AbCdEf", "-XyZ123")
    stack = [
        # An unknown key policy first: skipped, the rest still read.
        _r("aws:kms/key:Key", "pending-key", "p", {"policy": UNKNOWN}),
        _r("aws:kms/key:Key", "untagged-key", "k", {"policy": KEY_DOC}),
        _r("aws:kms/alias:Alias", "other-alias", "elsewhere", {"targetKeyId": "not-this-one"}),
        _r("aws:iam/policy:Policy", "pending-policy", None, {"name": "pending", "policy": UNKNOWN}),
        _r("aws:iam/policy:Policy", "read-policy", None, {"name": "shop-read", "policy": READ_DOC}),
        _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a1", None,
           {"role": "shop-app", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/shop-read"}),
        _r("aws:secretsmanager/secret:Secret", "db-secret", "db", {"name": "shop/staging/db", "tags": {}}),
        _r("aws:secretsmanager/secretPolicy:SecretPolicy", "db-policy", "db", {"secretArn": distinct}),
    ]
    model = collect(stack, account_id=ACCOUNT, region="us-east-1")
    assert [(k.arn, k.environment) for k in model.keys] == [(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/untagged-key", "")]
    (secret,) = model.secrets
    assert secret.arn == distinct and secret.region == "eu-west-1" and secret.resource_policy is None
    assert [p.name for p in model.principals[0].policies] == ["shop-read"]
    only_a_secret = collect([_r("aws:secretsmanager/secret:Secret", "s", None, {"name": "x/y/z"})],
                            account_id=OTHER, region="ap-southeast-2")
    assert only_a_secret.principals == () and only_a_secret.keys == ()
    assert only_a_secret.secrets[0].arn == f"arn:aws:secretsmanager:ap-southeast-2:{OTHER}:secret:x/y/z-AbCdEf"
    with pytest.raises(KeyError) as missing:
        model.principal("nobody")
    assert missing.value.args == ("nobody",)


@pytest.mark.parametrize(("resource", "message"), [
    (_r("aws:kms/key:Key", "k", None, {"policy": "[1]"}), "key k: policy is not a JSON document"),
    (_r("aws:secretsmanager/secret:Secret", "s", "p", {"name": "x/y/z"}),
     "secret x/y/z: policy is not a JSON document"),
])
def test_documents_that_are_not_objects_are_named(resource: CollectedResource, message: str) -> None:
    stack = [resource]
    if resource.type == "aws:secretsmanager/secret:Secret":
        stack.append(_r("aws:secretsmanager/secretPolicy:SecretPolicy", "sp", "p",
                        {"secretArn": SECRET, "policy": "7"}))
    with pytest.raises(UnsupportedPolicy) as caught:
        collect(stack, account_id=ACCOUNT, region="eu-west-1")
    assert str(caught.value) == message


def test_requests_for_every_cell_and_pass_through_actions() -> None:
    model = collect(STACK, account_id=ACCOUNT, region="eu-west-1")
    got = requests(model)
    assert len(got) == len(model.principals) * len(model.secrets) * len(OPERATIONS)
    assert got[0] == secret_request(model.principals[0], model.secrets[0], "read")
    assert got[-1] == secret_request(model.principals[-1], model.secrets[-1], "delete")
    secret = model.secrets[0]
    assert secret_request(PRINCIPAL, secret, "secretsmanager:DescribeSecret").action == "secretsmanager:DescribeSecret"
    key = model.keys[0]
    direct = kms_request(PRINCIPAL, key, "kms:Decrypt", via_service=None)
    assert (direct.principal, direct.action, direct.resource) == (ROLE, "kms:Decrypt", key.arn)
    assert direct.identity_policies == PRINCIPAL.policies and direct.resource_policy == key.policy
    listed = Request(principal=ROLE, action=READ, resource=SECRET, resource_account=ACCOUNT,
                     context={"aws:SourceVpce": ("a", "b")}, identity_policies=(), resource_policy=None)
    assert listed.to_simulation()["request"]["contextVariables"] == {"aws:SourceVpce": ["a", "b"]}
    assert "resourcePolicy" not in listed.to_simulation()


def test_the_matrix_uses_the_account_and_region_it_is_given() -> None:
    stack = [_r("aws:secretsmanager/secret:Secret", "s", None, {"name": "shop/staging/a", "tags": {}}),
             _r("aws:iam/role:Role", "r", None, {"name": "reader"}),
             _r("aws:iam/policy:Policy", "p", None, {"name": "p", "policy": doc(allow(
                 Resource=f"arn:aws:secretsmanager:ap-southeast-2:{OTHER}:secret:shop/staging/a-AbCdEf"))}),
             _r("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", None,
                {"role": "reader", "policyArn": f"arn:aws:iam::{OTHER}:policy/p"})]
    cells = {d.operation: d.decision for d in matrix(stack, account_id=OTHER, region="ap-southeast-2")}
    assert cells["read"] == "Allowed"
    cells = {d.operation: d.decision for d in matrix(stack, account_id=OTHER, region="eu-west-1")}
    assert cells["read"] == "ImplicitlyDenied"


def test_the_rendered_matrix_with_short_names() -> None:
    table = render([Decision(f"arn:aws:iam::{ACCOUNT}:role/team/a", "s", "read", "Allowed")])
    assert table.splitlines()[1:] == ["principal  secret  read   write  rotate delete",
                                      "a          s       A      ?      ?      ?"]


@pytest.mark.parametrize(("identity", "resource", "outcome"), [
    # NotAction matches actions case-insensitively, as Action does.
    ([doc({"Effect": "Allow", "NotAction": "SECRETSMANAGER:getsecretvalue", "Resource": "*"})], None,
     "ImplicitlyDenied"),
    # A negated operator with several values holds only if the request matches none of them.
    ([doc(allow(Condition={"ArnNotLike": {"aws:PrincipalArn": [ROLE, "arn:aws:iam::1:role/x"]}}))], None,
     "ImplicitlyDenied"),
    ([doc(allow(Condition={"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::1:role/x", ROLE]}}))], None,
     "ImplicitlyDenied"),
    ([doc(allow(Condition={"NumericNotEquals": {"n": ["1", "2"]}}))], None, "ImplicitlyDenied"),
    ([doc(allow(Condition={"NumericNotEquals": {"n": ["3", "4"]}}))], None, "Allowed"),
    # A JSON true in a string condition reads as "true".
    ([doc(allow(Condition={"StringEquals": {"flag": True}}))], None, "Allowed"),
    # A resource policy: a statement for someone else before ours does not end the search.
    ([], doc(allow(Principal={"AWS": "arn:aws:iam::1:role/x"}), allow(Principal={"AWS": ROLE})), "Allowed"),
    ([], doc(allow(Principal={"Service": "lambda.amazonaws.com", "AWS": ROLE})), "Allowed"),
])
def test_more_evaluation_rules(identity: list[dict[str, Any]], resource: dict[str, Any] | None, outcome: str) -> None:
    context = {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": ROLE, "n": "2", "flag": "true"}
    assert evaluate(request(identity, resource, context=context)) == outcome


def test_not_principal_in_a_resource_policy_is_refused() -> None:
    with pytest.raises(UnsupportedPolicy) as caught:
        evaluate(request([], doc(allow(NotPrincipal={"AWS": ROLE}))))
    assert str(caught.value) == "NotPrincipal"


# --- a rotation needs the function too ---------------------------------------------------------------

FUNCTION = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:shop-staging-rotate-token"
INVOKE = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": FUNCTION}
ROTATE = {"Effect": "Allow", "Action": "secretsmanager:RotateSecret", "Resource": SECRET}


def test_a_rotate_cell_needs_rotatesecret_and_the_functions_invocation() -> None:
    """botocore's RotateSecret documentation: "You also need lambda:InvokeFunction permissions on the
    rotation function". The schedule (SecretRotation) says which function a secret's rotation runs."""
    stack = [
        _r("aws:secretsmanager/secret:Secret", "db-secret", "db", {"name": "shop/staging/db", "tags": {}}),
        _r("aws:secretsmanager/secretPolicy:SecretPolicy", "db-policy", "db", {"secretArn": SECRET, "policy": doc()}),
        _r("aws:secretsmanager/secretRotation:SecretRotation", "db-schedule", "fn",
           {"secretId": SECRET, "rotationLambdaArn": FUNCTION}),
        _r("aws:secretsmanager/secretRotation:SecretRotation", "other-schedule", "fn",
           {"secretId": UNKNOWN, "rotationLambdaArn": FUNCTION}),
    ]
    (secret,) = collect(stack, account_id=ACCOUNT, region="eu-west-1").secrets
    assert secret.rotation_function == FUNCTION
    unrotated = SecretInfo(name="shop/staging/x", arn=SECRET, region="eu-west-1", tags={}, resource_policy=None,
                           kms_key_id="", recovery_window_days=None)

    def principal(*statements: dict[str, Any]) -> Principal:
        return Principal(ROLE, "shop-app", (NamedPolicy("p", f"arn:aws:iam::{ACCOUNT}:policy/p", doc(*statements)),))

    cases: list[tuple[Principal, SecretInfo, Outcome]] = [
        (principal(ROTATE, INVOKE), secret, "Allowed"),
        (principal(ROTATE), secret, "ImplicitlyDenied"),
        (principal(INVOKE), secret, "ImplicitlyDenied"),
        (principal(ROTATE, {**INVOKE, "Effect": "Deny"}), secret, "ExplicitlyDenied"),
        (principal({**ROTATE, "Effect": "Deny"}, INVOKE), secret, "ExplicitlyDenied"),
        (principal(ROTATE), unrotated, "Allowed"),  # no schedule: no function to invoke
    ]
    for who, what, want in cases:
        assert evaluate_cell(who, what, "rotate") == want, (who.policies[0].document, what.name)
        assert AccessIndex(AccessModel(ACCOUNT, "eu-west-1", (who,), (what,), ())).decide(who, what, "rotate") == want
    # Only the rotate cell invokes.
    assert [r.action for r in cell_requests(cases[0][0], secret, "write")] == ["secretsmanager:PutSecretValue"]
    invoke = cell_requests(cases[0][0], secret, "rotate")[1]
    assert (invoke.action, invoke.resource, invoke.resource_policy, invoke.service) == (
        "lambda:InvokeFunction", FUNCTION, None, "lambda")
    assert combine([]) == "ImplicitlyDenied"
