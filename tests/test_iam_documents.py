"""Policy documents (components/iam.py): the exact JSON rendered from typed statements, the statements
it refuses, the size limits and the ARN helpers.

Limits: IAM managed policy 6,144 characters without whitespace ("IAM and AWS STS quotas"), Secrets
Manager resource policy 20,480 ("Secrets Manager quotas"), KMS key policy 32,768 ("AWS KMS quotas").
"""

from __future__ import annotations

import json

import pytest

from components import iam
from components.errors import ConfigurationError
from components.iam import PolicyError, Statement


def test_a_document_is_rendered_exactly_and_compactly() -> None:
    statements = [
        Statement(sid="Read", effect="Allow", actions=("secretsmanager:GetSecretValue",
                                                       "secretsmanager:DescribeSecret"),
                  resources=("arn:b", "arn:a")),
        Statement(sid="Keys", effect="Allow", actions=("kms:Decrypt",), resources=("arn:key",),
                  conditions={"StringEquals": {"kms:ViaService": ("svc",), "aws:Tag": ("b", "a")}}),
        Statement(sid="Nobody", effect="Deny", actions=("secretsmanager:*",), principals={"AWS": ("*",)},
                  not_principal=True),
        Statement(sid="Elsewhere", effect="Deny", actions=("secretsmanager:GetSecretValue",),
                  resources=("arn:mine",), not_resource=True,
                  principals={"Service": ("b.amazonaws.com", "a.amazonaws.com"), "AWS": ("arn:root",)}),
    ]
    text = iam.document(statements, where="test")
    assert " " not in text, "compact: no whitespace"
    assert json.loads(text) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow",
             "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
             "Resource": ["arn:a", "arn:b"]},
            {"Sid": "Keys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:key",
             "Condition": {"StringEquals": {"aws:Tag": ["a", "b"], "kms:ViaService": "svc"}}},
            {"Sid": "Nobody", "Effect": "Deny", "NotPrincipal": {"AWS": "*"}, "Action": "secretsmanager:*",
             "Resource": "*"},
            {"Sid": "Elsewhere", "Effect": "Deny",
             "Principal": {"AWS": "arn:root", "Service": ["a.amazonaws.com", "b.amazonaws.com"]},
             "Action": "secretsmanager:GetSecretValue", "NotResource": "arn:mine"},
        ],
    }
    # Keys in a fixed order, so that an unchanged policy never shows a diff.
    assert list(json.loads(text)["Statement"][3]) == ["Sid", "Effect", "Principal", "Action", "NotResource"]
    assert text == iam.document(list(statements), where="again")


@pytest.mark.parametrize(("statement", "fragment", "field"), [
    (Statement(sid="All", effect="Allow", actions=("*",)), "statement 'All' would allow '*'; grant named actions only",
     "actions"),
    (Statement(sid="Service", effect="Allow", actions=("secretsmanager:GetSecretValue", "kms:*")),
     "statement 'Service' would allow 'kms:*'; grant named actions only", "actions"),
    (Statement(sid="NotP", effect="Allow", actions=("s3:GetObject",), principals={"AWS": ("arn:x",)},
               not_principal=True), "statement 'NotP': NotPrincipal/NotResource only in a Deny", None),
    (Statement(sid="NotR", effect="Allow", actions=("s3:GetObject",), not_resource=True),
     "statement 'NotR': NotPrincipal/NotResource only in a Deny", None),
    (Statement(sid="Anyone", effect="Allow", actions=("s3:GetObject",), principals={"Service": ("x", "*")}),
     "statement 'Anyone' allows any Service principal ('*')", "principals"),
    (Statement(sid="Empty", effect="Deny", actions=()), "statement 'Empty' has no actions", "actions"),
    (Statement(sid="Nowhere", effect="Allow", actions=("s3:GetObject",), resources=()),
     "statement 'Nowhere' has no resources", "resources"),
])
def test_statements_the_project_refuses(statement: Statement, fragment: str, field: str | None) -> None:
    with pytest.raises(PolicyError) as caught:
        iam.document([statement], where="policy of api")
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert error.file == "policy of api" and error.reason == fragment and error.field == field


def test_a_deny_may_name_any_action_and_principal() -> None:
    text = iam.document([Statement(sid="D", effect="Deny", actions=("*",), principals={"AWS": ("*",)})], where="x")
    assert json.loads(text)["Statement"][0]["Action"] == "*"


def test_a_statement_id_is_used_once() -> None:
    twice = [Statement(sid="Same", effect="Allow", actions=("s3:GetObject",)),
             Statement(sid="Same", effect="Deny", actions=("s3:PutObject",))]
    with pytest.raises(PolicyError) as caught:
        iam.document(twice, where="policy of api")
    assert caught.value.reason == "statement id 'Same' is used twice"
    assert iam.document(twice[:1], where="x")


def test_the_size_limits() -> None:
    assert (iam.MANAGED_POLICY_LIMIT, iam.SECRET_POLICY_LIMIT, iam.KEY_POLICY_LIMIT) == (6144, 20480, 32768)

    def sized(n: int) -> list[Statement]:
        return [Statement(sid="S", effect="Allow", actions=("s3:GetObject",), resources=(f"arn:{'x' * n}",))]

    base = len(iam.document(sized(0), where="x"))
    exact = sized(iam.MANAGED_POLICY_LIMIT - base)
    assert len(iam.document(exact, where="x")) == iam.MANAGED_POLICY_LIMIT
    with pytest.raises(PolicyError) as caught:
        iam.document(sized(iam.MANAGED_POLICY_LIMIT - base + 1), where="policy of api")
    assert caught.value.reason == (
        f"the policy document has {iam.MANAGED_POLICY_LIMIT + 1} characters, over AWS's limit of "
        f"{iam.MANAGED_POLICY_LIMIT}; split the secrets among more consumers or fewer regions")
    assert caught.value.field == "statements" and caught.value.file == "policy of api"
    assert iam.document(sized(iam.MANAGED_POLICY_LIMIT), where="x", limit=iam.KEY_POLICY_LIMIT)


def test_arn_helpers() -> None:
    assert iam.account_root("123456789012") == "arn:aws:iam::123456789012:root"
    assert iam.secret_arn_pattern("eu-west-1", "123456789012", "shop/staging/db") == (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/staging/db-??????")
    assert iam.environment_secrets_pattern("eu-west-1", "123456789012", "shop", "staging") == (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/staging/*")
    assert iam.secrets_manager_via("ap-southeast-2") == "secretsmanager.ap-southeast-2.amazonaws.com"


def test_a_trust_policy_names_the_service_and_the_account() -> None:
    text = iam.trust_policy("lambda.amazonaws.com", "123456789012")
    assert " " not in text
    assert json.loads(text) == {"Version": "2012-10-17", "Statement": [{
        "Sid": "AssumedByService", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }]}
