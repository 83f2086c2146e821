"""The access matrix's fast path (`AccessIndex.decide`: statements compiled once, indexed by action, with
pattern, principal and condition results cached across cells) gives what the rule-by-rule evaluator
(`evaluate`, tests/test_access_evaluator.py) gives, cell by cell, on a model built to make the caches
matter: statements shared by several principals and secrets, conditions that depend on the principal,
the secret's environment and the recovery window of a deletion, resource policies naming one role, the
account or another account."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from preview.access_matrix import (
    OPERATIONS,
    AccessIndex,
    AccessModel,
    NamedPolicy,
    Principal,
    SecretInfo,
    UnsupportedPolicy,
    evaluate,
    secret_request,
)

ACCOUNT = "123456789012"
OTHER = "210987654321"
SM = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret"
ALL = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:RotateSecret",
       "secretsmanager:DeleteSecret"]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def role(name: str, *documents: dict[str, Any], account: str = ACCOUNT) -> Principal:
    arn = f"arn:aws:iam::{account}:role/{name}"
    return Principal(arn=arn, name=name, policies=tuple(
        NamedPolicy(f"{name}-{i}", f"arn:aws:iam::{account}:policy/{name}-{i}", d) for i, d in enumerate(documents)))


def secret(name: str, env: str, window: int | None = 30, policy: dict[str, Any] | None = None) -> SecretInfo:
    return SecretInfo(name=name, arn=f"{SM}:{name}-AbCdEf", region="eu-west-1", tags={"environment": env},
                      resource_policy=policy, kms_key_id="", recovery_window_days=window)


# Statements shared by several principals (equal JSON: compiled once, caches shared).
READ_STAGING = {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": f"{SM}:shop/*", "Condition": {"StringEquals": {"aws:ResourceTag/environment": "staging"}}}
WRITE_ANY = {"Effect": "Allow", "Action": "secretsmanager:*SecretValue", "Resource": f"{SM}:shop/*"}
DENY_PRODUCTION = {"Effect": "Deny", "NotAction": "secretsmanager:GetSecretValue",
                   "Resource": f"{SM}:shop/production/*"}
DENY_SHORT_WINDOW = {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*",
                     "Condition": {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "14"}}}
ALLOW_DELETE = {"Effect": "Allow", "Action": "secretsmanager:DeleteSecret", "Resource": f"{SM}:*"}
ROTATE_OTHERS = {"Effect": "Allow", "Action": "secretsmanager:RotateSecret", "NotResource": f"{SM}:shop/staging/b-*"}
ONLY_FROM_ACCOUNT = {"Effect": "Allow", "Action": ALL, "Resource": "*",
                     "Condition": {"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [ACCOUNT, "999999999999"]},
                                   "StringNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ops"}}}
DENY_OUTSIDE = {"Sid": "DenyOutsideAccount", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:*",
                "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT},
                                               "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}


def model() -> AccessModel:
    principals = (
        role("reader", doc(READ_STAGING)),
        role("reader-too", doc(READ_STAGING)),  # the same statement: its caches serve both
        role("ci", doc(READ_STAGING, WRITE_ANY, DENY_PRODUCTION)),
        role("admin", doc(ALLOW_DELETE, DENY_SHORT_WINDOW), doc(ROTATE_OTHERS)),
        role("ops", doc(ONLY_FROM_ACCOUNT)),
        role("dev", doc(ONLY_FROM_ACCOUNT)),
        role("nothing"),
        # Action names are case-insensitive in IAM: so are they for the index.
        role("shouty", doc({"Effect": "Allow", "Action": "SecretsManager:getSecretValue", "Resource": "*"},
                           {"Effect": "Deny", "NotAction": ["SECRETSMANAGER:GETSECRETVALUE",
                                                            "secretsmanager:deletesecret"], "Resource": "*"})),
        role("partner", doc({"Effect": "Allow", "Action": ALL, "Resource": "*"}), account=OTHER),
        role("partner-reader", doc({"Effect": "Allow", "Action": ALL, "Resource": "*"}), account=OTHER),
    )
    guarded = doc(DENY_OUTSIDE)
    to_partner = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/partner"},
                      "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    to_account = doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "secretsmanager:PutSecretValue",
                      "Resource": "*"},
                     {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/nothing"},
                      "Action": "secretsmanager:RotateSecret", "Resource": "*"})
    deny_reader = doc({"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"},
                       "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
                      # A later statement for the same action: one that does not name the principal is skipped.
                      {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/partner"},
                       "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    secrets = (
        secret("shop/staging/a", "staging", 7, guarded),
        secret("shop/staging/b", "staging", 30, guarded),
        secret("shop/staging/c", "staging", None, to_partner),
        secret("shop/staging/d", "staging", 30, deny_reader),
        secret("shop/production/a", "production", 7, guarded),
        secret("shop/production/b", "production", 30, to_account),
        secret("other/staging/x", "staging", 30),
    )
    return AccessModel(account_id=ACCOUNT, region="eu-west-1", principals=principals, secrets=secrets, keys=())


def test_every_cell_is_what_the_evaluator_decides() -> None:
    access = model()
    index = AccessIndex(access)
    outcomes: Counter[str] = Counter()
    for principal in access.principals:
        for item in access.secrets:
            for operation in OPERATIONS:
                expected = evaluate(secret_request(principal, item, operation))
                assert index.decide(principal, item, operation) == expected, (principal.name, item.name, operation)
                outcomes[expected] += 1
    # The model exercises every outcome, and more than a few of each.
    assert min(outcomes.values()) >= 10 and set(outcomes) == {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied"}


def test_cells_decided_in_any_order_agree() -> None:
    """The caches are filled by whichever cell comes first: the reverse order gives the same decisions."""
    access = model()
    forward, backward = AccessIndex(access), AccessIndex(access)
    cells = [(p, s, op) for p in access.principals for s in access.secrets for op in OPERATIONS]
    first = [forward.decide(*cell) for cell in cells]
    second = [backward.decide(*cell) for cell in reversed(cells)]
    assert first == list(reversed(second))


def test_some_decisions_as_aws_makes_them() -> None:
    """A few cells stated outright, so that both paths agreeing on a wrong answer would still fail."""
    access = model()
    index = AccessIndex(access)
    by_name = {p.name: p for p in access.principals}
    secrets = {s.name: s for s in access.secrets}

    def decide(who: str, what: str, operation: str) -> str:
        return index.decide(by_name[who], secrets[what], operation)

    assert decide("reader", "shop/staging/a", "read") == "Allowed"
    assert decide("reader", "shop/production/a", "read") == "ImplicitlyDenied"  # the tag condition
    assert decide("reader", "shop/staging/d", "read") == "ExplicitlyDenied"  # its resource policy
    assert decide("reader-too", "shop/staging/d", "read") == "Allowed"
    assert decide("ci", "shop/production/a", "write") == "ExplicitlyDenied"
    assert decide("ci", "shop/staging/a", "write") == "Allowed"
    assert decide("admin", "shop/staging/a", "delete") == "ExplicitlyDenied"  # a 7-day window
    assert decide("admin", "shop/staging/b", "delete") == "Allowed"
    assert decide("admin", "shop/staging/c", "delete") == "Allowed"  # no window sent: the Deny's key is absent
    assert decide("admin", "shop/staging/b", "rotate") == "ImplicitlyDenied"  # NotResource
    assert decide("admin", "shop/staging/a", "rotate") == "Allowed"
    assert decide("ops", "shop/staging/a", "read") == "ImplicitlyDenied"
    assert decide("dev", "shop/staging/a", "read") == "Allowed"
    assert decide("nothing", "shop/production/b", "rotate") == "Allowed"  # named in the resource policy
    assert decide("partner", "shop/staging/c", "read") == "Allowed"  # both sides allow
    assert decide("partner-reader", "shop/staging/c", "read") == "ImplicitlyDenied"
    assert decide("partner", "shop/staging/a", "read") == "ExplicitlyDenied"
    assert decide("partner-reader", "shop/production/b", "write") == "Allowed"  # through its account
    assert decide("partner-reader", "other/staging/x", "read") == "ImplicitlyDenied"
    assert decide("partner", "shop/staging/d", "read") == "Allowed"  # the second statement of its policy
    assert decide("shouty", "shop/staging/a", "read") == "Allowed"
    assert decide("shouty", "shop/staging/a", "write") == "ExplicitlyDenied"
    assert decide("shouty", "shop/staging/a", "delete") == "ImplicitlyDenied"


def test_an_action_outside_the_four_operations() -> None:
    """`decide` takes an action name as well as an operation, as `secret_request` does."""
    access = model()
    describe = "secretsmanager:DescribeSecret"
    index = AccessIndex(access, actions=(*OPERATIONS.values(), describe))
    decided = {(p.name, s.name): index.decide(p, s, describe) for p in access.principals for s in access.secrets}
    assert decided == {(p.name, s.name): evaluate(secret_request(p, s, describe))
                       for p in access.principals for s in access.secrets}
    assert decided[("reader", "shop/staging/a")] == "Allowed" and decided[("ci", "shop/production/a")] == (
        "ExplicitlyDenied")


@pytest.mark.parametrize(("statement", "message"), [
    ({"Effect": "Allow", "Action": "*", "Resource": "*", "Principl": "x"}, "statement element Principl"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "x"}}},
     "condition operator DateLessThan"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"ForAnyValue:DateLessThanIfExists": {"aws:CurrentTime": "x"}}},
     "condition operator ForAnyValue:DateLessThanIfExists"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"ForAnyValue:ForAllValues:StringEquals": {"aws:PrincipalAccount": "x"}}},
     "condition operator ForAnyValue:ForAllValues:StringEquals"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NullIfExists": {"aws:TagKeys": "true"}}},
     "condition operator NullIfExists"),
    ({"Effect": "Allow", "Action": "*", "Resource": "*",
      "Condition": {"ForAllValues:NullIfExists": {"aws:TagKeys": "true"}}},
     "condition operator ForAllValues:NullIfExists"),
])
def test_what_the_index_cannot_evaluate_is_refused_when_it_is_built(statement: dict[str, Any], message: str) -> None:
    access = AccessModel(account_id=ACCOUNT, region="eu-west-1", principals=(role("x", doc(statement)),),
                         secrets=(), keys=())
    with pytest.raises(UnsupportedPolicy) as caught:
        AccessIndex(access)
    assert str(caught.value) == message


@pytest.mark.parametrize("operator", ["ForAnyValue:StringEqualsIfExists", "ForAllValues:StringLikeIfExists",
                                      "StringNotEqualsIfExists", "Null"])
def test_qualified_and_if_exists_operators_are_evaluated(operator: str) -> None:
    values: Any = "true" if operator == "Null" else ACCOUNT
    statement = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
                 "Condition": {operator: {"aws:PrincipalAccount": values}}}
    access = AccessModel(account_id=ACCOUNT, region="eu-west-1", principals=(role("x", doc(statement)),),
                         secrets=(secret("shop/staging/a", "staging"),), keys=())
    principal, item = access.principals[0], access.secrets[0]
    decided = AccessIndex(access).decide(principal, item, "read")
    assert decided == evaluate(secret_request(principal, item, "read"))
    assert decided == ("Allowed" if operator.startswith("For") else "ImplicitlyDenied")
