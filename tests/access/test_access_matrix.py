"""Least privilege, checked cell by cell by an independent IAM simulator.

Every principal both stacks give rights to, against every secret of BOTH stacks (so a staging role
is checked against production's secrets too), for read, write, rotate and delete: the simulator's
decision must equal what the rules in `access_harness.expected` say, and `preview.access_matrix`'s
own evaluator must equal the simulator.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from access_harness import ACCOUNT, APP, REGION, STACKS, Role, Simulator, Stacks, catalog, expected, roles, run_both

from preview.access_matrix import (
    OPERATIONS,
    SYMBOLS,
    AccessIndex,
    AccessModel,
    NamedPolicy,
    Principal,
    Request,
    SecretInfo,
    UnsupportedPolicy,
    cell_requests,
    combine,
    evaluate,
    evaluate_cell,
    matrix,
    render,
    requests,
    secret_request,
)

Cell = tuple[str, str, str]


@pytest.fixture(scope="module")
def simulated(stacks: Stacks, simulator: Simulator) -> dict[Cell, str]:
    """The simulator's decision on every cell of the matrix, in one batch."""
    batch = requests(stacks.model)
    return {(r.principal, r.resource, r.action): d for r, d in zip(batch, simulator.decide(batch), strict=True)}


def _simulated_cell(simulated: dict[Cell, str], principal: Principal, secret: SecretInfo, operation: str) -> str:
    """The simulator's decision on one cell: every request the cell needs (a rotation also invokes)."""
    return combine(simulated[(r.principal, r.resource, r.action)]
                   for r in cell_requests(principal, secret, operation))


def _check_principal(model: AccessModel, role: Role, simulated: dict[Cell, str], *, ci_reads_values: bool) -> None:
    principal = model.principal(role.arn)
    problems: list[str] = []
    for secret in model.secrets:
        for operation in OPERATIONS:
            want = expected(role, secret, operation, ci_reads_values=ci_reads_values)
            simulator = _simulated_cell(simulated, principal, secret, operation)
            ours = evaluate_cell(principal, secret, operation)
            if simulator != want:
                problems.append(f"{role} {operation} {secret.name}: simulator {simulator}, rules say {want}")
            if ours != simulator:
                problems.append(f"{role} {operation} {secret.name}: access_matrix {ours}, simulator {simulator}")
    assert not problems, "\n".join(problems)


def test_both_stacks_declare_every_catalog_secret(stacks: Stacks) -> None:
    names = {s.name for s in stacks.model.secrets}
    assert names == {f"{APP}/{env}/{name}" for env in STACKS for name in catalog()}
    assert all(s.resource_policy is not None for s in stacks.model.secrets), "every secret has a resource policy"
    assert all(stacks.model.key_of(s) is not None for s in stacks.model.secrets)


def test_exactly_the_expected_principals_get_rights(stacks: Stacks) -> None:
    """Nobody but the configured roles and the rotation roles is attached a policy."""
    assert {p.arn for p in stacks.model.principals} == {r.arn for r in roles()}
    for principal in stacks.model.principals:
        assert principal.policies, f"{principal.name} has no policy the program declares"
        # No AWS managed policy: every right is in a document the program declares (and the matrix
        # and the simulator see).
        assert not principal.external_policies, principal.external_policies


@pytest.mark.parametrize("role", roles(), ids=str)
def test_least_privilege(role: Role, stacks: Stacks, simulated: dict[Cell, str]) -> None:
    _check_principal(stacks.model, role, simulated, ci_reads_values=False)


def test_matrix_equals_the_simulator_on_every_cell(stacks: Stacks, simulated: dict[Cell, str]) -> None:
    decisions = matrix(stacks.resources, account_id=ACCOUNT, region=REGION)
    model = stacks.model
    assert len(decisions) == len(model.principals) * len(model.secrets) * len(OPERATIONS) > 0
    by_name = {s.name: s for s in model.secrets}
    mismatches = [d for d in decisions if _simulated_cell(simulated, model.principal(d.principal),
                                                          by_name[d.secret], d.operation) != d.decision]
    assert not mismatches, mismatches[:10]
    # Every kind of answer occurs: a matrix of one value would prove nothing.
    assert {d.decision for d in decisions} == {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied"}


def test_render(stacks: Stacks) -> None:
    decisions = matrix(stacks.resources, account_id=ACCOUNT, region=REGION)
    text = render(decisions)
    lines = text.splitlines()
    assert lines[1].split() == ["principal", "secret", *OPERATIONS]
    rows = lines[2:]
    assert len(rows) == len(stacks.model.principals) * len(stacks.model.secrets)
    runtime = next(r for r in rows if r.split()[:2] == [f"{APP}-staging-app", f"{APP}/staging/database-url"])
    assert runtime.split()[2:] == [SYMBOLS["Allowed"], "D", "D", "D"]
    ci = next(r for r in rows if r.split()[:2] == [f"{APP}-production-deploy", f"{APP}/production/redis"])
    assert ci.split()[2:] == ["-", "A", "A", "D"]
    assert render([]).strip()


def test_with_ci_reading_values(tmp_path: Path, simulator: Simulator) -> None:
    """`ciReadsValues: true` gives the pipeline GetSecretValue on its own environment, nothing more."""
    both = run_both(tmp_path, ciReadsValues=True)
    batch = [r for r in requests(both.model) if r.principal.endswith("-deploy")]
    simulated = {(r.principal, r.resource, r.action): d for r, d in zip(batch, simulator.decide(batch), strict=True)}
    for env in STACKS:
        _check_principal(both.model, Role(env, "ci"), simulated, ci_reads_values=True)


# Requests beyond the matrix's context ------------------------------------------------------------


def _both(simulator: Simulator, batch: list[Request]) -> list[str]:
    """The simulator's decisions, after checking that our evaluator agrees on each."""
    decided = simulator.decide(batch)
    ours = [evaluate(r) for r in batch]
    assert ours == decided, [(r.principal, r.action, r.resource, o, d)
                             for r, o, d in zip(batch, ours, decided, strict=True) if o != d]
    return decided


def test_ci_never_deletes_without_recovery(stacks: Stacks, simulator: Simulator) -> None:
    """Staging's pipeline may delete its secrets, but never forced nor with a window under the stack's."""
    ci = stacks.model.principal(Role("staging", "ci").arn)
    own = [s for s in stacks.model.secrets if s.environment == "staging"]
    window = own[0].recovery_window_days
    assert window is not None
    cases = {
        "forced": ({"secretsmanager:ForceDeleteWithoutRecovery": "true"}, "ExplicitlyDenied"),
        "short window": ({"secretsmanager:RecoveryWindowInDays": str(window - 1)}, "ExplicitlyDenied"),
        "the stack's window": ({"secretsmanager:RecoveryWindowInDays": str(window)}, "Allowed"),
    }
    for label, (context, want) in cases.items():
        batch = [secret_request(ci, s, "delete", context) for s in own]
        assert set(_both(simulator, batch)) == {want}, label
    # A plain DeleteSecret (no window given: AWS uses 30 days) carries neither key.
    plain = [replace(r, context={k: v for k, v in r.context.items() if not k.startswith("secretsmanager:")})
             for r in (secret_request(ci, s, "delete") for s in own)]
    assert set(_both(simulator, plain)) == {"Allowed"}


def test_no_principal_outside_the_account(stacks: Stacks, simulator: Simulator) -> None:
    """The secrets' resource policy denies another account's principal, whatever its own policy grants."""
    outsider = Principal(
        arn="arn:aws:iam::999999999999:role/intruder", name="intruder",
        policies=(NamedPolicy("admin-like", "arn:aws:iam::999999999999:policy/admin-like", {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
        }),),
    )
    batch = [secret_request(outsider, s, "read") for s in stacks.model.secrets]
    assert set(_both(simulator, batch)) == {"ExplicitlyDenied"}
    # Inside the account the same identity policy is enough: the resource policy only fences the account.
    insider = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/admin", name="admin", policies=outsider.policies)
    batch = [secret_request(insider, s, "read") for s in stacks.model.secrets]
    assert set(_both(simulator, batch)) == {"Allowed"}


def test_admin_secrets_are_read_only_by_their_rotation(stacks: Stacks, simulated: dict[Cell, str]) -> None:
    masters = {e["rotation"]["master"] for e in catalog().values()
               if isinstance(e.get("rotation"), dict) and e["rotation"].get("master")}
    readers = {
        (p.name, s.name)
        for p in stacks.model.principals for s in stacks.model.secrets
        if s.name.split("/", 2)[2] in masters
        and simulated[(p.arn, s.arn, OPERATIONS["read"])] == "Allowed"
        and "-rotate-" not in p.name
    }
    assert not readers, sorted(readers)


def test_a_request_without_a_principal_account_is_fenced_out(stacks: Stacks, simulator: Simulator) -> None:
    """A request that carries no `aws:PrincipalAccount` (and is not an AWS service) is denied by the
    resource policy: StringNotEquals matches an absent key, BoolIfExists too."""
    insider = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/admin", name="admin", policies=(NamedPolicy(
        "reader", f"arn:aws:iam::{ACCOUNT}:policy/reader", {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
        }),))
    batch = [replace(r, context={k: v for k, v in r.context.items()
                                 if k not in ("aws:PrincipalAccount", "aws:PrincipalIsAWSService")})
             for r in (secret_request(insider, s, "read") for s in stacks.model.secrets)]
    assert set(_both(simulator, batch)) == {"ExplicitlyDenied"}


# The index the matrix evaluates through -----------------------------------------------------------


def _scan_equals_index(model: AccessModel) -> None:
    index = AccessIndex(model)
    cells = [(p, s, op) for p in model.principals for s in model.secrets for op in OPERATIONS]
    assert cells
    differ = [(p.name, s.name, op) for p, s, op in cells if index.decide(p, s, op) != evaluate_cell(p, s, op)]
    assert not differ, differ[:10]


def test_index_equals_the_scanning_evaluator_on_both_stacks(stacks: Stacks) -> None:
    _scan_equals_index(stacks.model)


def _policy(name: str, *statements: dict[str, object]) -> NamedPolicy:
    return NamedPolicy(name, f"arn:aws:iam::{ACCOUNT}:policy/{name}", {"Version": "2012-10-17",
                                                                      "Statement": list(statements)})


def _secret(name: str, env: str, resource_policy: dict[str, object] | None, account: str = ACCOUNT) -> SecretInfo:
    arn = f"arn:aws:secretsmanager:{REGION}:{account}:secret:{APP}/{env}/{name}-AbCdEf"
    return SecretInfo(name=f"{APP}/{env}/{name}", arn=arn, region=REGION, tags={"environment": env},
                      resource_policy=resource_policy, kms_key_id="", recovery_window_days=7)


def test_index_equals_the_scanning_evaluator_on_every_element_it_indexes() -> None:
    """NotAction, NotResource, several patterns in one statement, conditions shared by many secrets'
    policies, a resource policy naming the principal, its account, or another account."""
    other = "210987654321"
    notaction = _policy("notaction", {"Effect": "Allow", "NotAction": ["secretsmanager:Delete*", "kms:*"],
                                      "Resource": [f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:{APP}/staging/*",
                                                   f"arn:aws:secretsmanager:*:{other}:secret:*"]})
    notresource = _policy("notresource", {"Effect": "Deny", "Action": "secretsmanager:*Secret*",
                                          "NotResource": f"arn:aws:secretsmanager:*:*:secret:{APP}/staging/a-*",
                                          "Condition": {"StringEquals": {"aws:ResourceTag/environment": "staging"}}})
    delete = _policy("delete", {"Effect": "Allow", "Action": "secretsmanager:DeleteSecret", "Resource": "*",
                                "Condition": {"NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": 7},
                                              "Bool": {"secretsmanager:ForceDeleteWithoutRecovery": False}}})
    principals = (
        Principal(f"arn:aws:iam::{ACCOUNT}:role/a", "a", (notaction,)),
        Principal(f"arn:aws:iam::{ACCOUNT}:role/b", "b", (notaction, notresource, delete)),
        Principal(f"arn:aws:iam::{other}:role/c", "c", (notaction,)),
        Principal(f"arn:aws:iam::{ACCOUNT}:role/d", "d", ()),
    )

    def fence(*allowed: str) -> dict[str, object]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:PrincipalAccount": [ACCOUNT, *allowed]}}},
            {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/d", other]},
             "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], "Resource": "*"},
        ]}

    secrets = (_secret("a-1", "staging", fence()), _secret("b-1", "staging", fence(other)),
               _secret("a-2", "production", None), _secret("c-1", "staging", fence(other), account=other))
    model = AccessModel(account_id=ACCOUNT, region=REGION, principals=principals, secrets=secrets, keys=())
    _scan_equals_index(model)
    decisions = {AccessIndex(model).decide(p, s, op) for p in principals for s in secrets for op in OPERATIONS}
    assert decisions == {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied"}


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "NotPrincipal": {"AWS": "*"}},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"ForAnyValue:DateGreaterThan": {"aws:TagKeys": "x"}}},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"DateGreaterThan": {"x": "1"}}},
])
def test_the_index_refuses_what_the_evaluator_does_not_know(statement: dict[str, object]) -> None:
    """Even in a statement no cell of the matrix would reach (a KMS action), the index refuses an
    element or operator the evaluator does not implement, rather than skip it."""
    principal = Principal(f"arn:aws:iam::{ACCOUNT}:role/a", "a", (_policy("odd", statement),))
    model = AccessModel(account_id=ACCOUNT, region=REGION, principals=(principal,),
                        secrets=(_secret("a-1", "staging", None),), keys=())
    with pytest.raises(UnsupportedPolicy):
        AccessIndex(model)
