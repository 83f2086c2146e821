"""Who can do what to which secret: the access matrix of a preview run.

From the resources a preview run collects, `collect()` gathers every principal the program gives
rights to (the roles an `aws:iam/rolePolicyAttachment:RolePolicyAttachment` attaches a declared
`aws:iam/policy:Policy` to, and the rotation roles `aws:iam/role:Role`), their identity policies,
each secret's resource policy and each KMS key's policy. `matrix()` then evaluates, for every
principal, every secret and four operations, the request AWS would see:

    read   = secretsmanager:GetSecretValue      write  = secretsmanager:PutSecretValue
    rotate = secretsmanager:RotateSecret        delete = secretsmanager:DeleteSecret

on the secret's ARN (a `rotate` cell also needs `lambda:InvokeFunction` on the secret's rotation
function: RotateSecret runs the function on the caller's behalf), with the context
`aws:ResourceTag/environment` (the secret's tag),
`aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:PrincipalIsAWSService=false` and, for delete,
the recovery window Pulumi sends (`secretsmanager:RecoveryWindowInDays`,
`secretsmanager:ForceDeleteWithoutRecovery=false`).

`matrix()` evaluates through `AccessIndex` (each principal's and each secret's statements by action,
resource patterns matched once per ARN, conditions once per context), which gives what the scanning
`evaluate()` gives on every cell (tests/access compares both).

The evaluator here is deliberately small (Allow/Deny, Action/NotAction, Resource/NotResource with
IAM wildcards, Principal, and the condition operators the project writes); it refuses anything it
does not know rather than guess. The tests (`tests/access/`) cross-check every cell against an
independent simulator (`@cloud-copilot/iam-simulate`) from the very same `Request`s, so the two
cannot drift apart silently.

    decisions = matrix(report.run.resources, account_id="123456789012", region="ap-southeast-2")
    print(render(decisions))
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Literal

from preview.model import UNKNOWN, CollectedResource, plain

Operation = Literal["read", "write", "rotate", "delete"]
Outcome = Literal["Allowed", "ImplicitlyDenied", "ExplicitlyDenied"]

OPERATIONS: dict[str, str] = {
    "read": "secretsmanager:GetSecretValue",
    "write": "secretsmanager:PutSecretValue",
    "rotate": "secretsmanager:RotateSecret",
    "delete": "secretsmanager:DeleteSecret",
}
"""Each operation of the matrix and the one action it is evaluated as."""

SYMBOLS: dict[str, str] = {"Allowed": "A", "ImplicitlyDenied": "-", "ExplicitlyDenied": "D"}

POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE = "aws:iam/role:Role"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"  # noqa: S105 - a type token
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"  # noqa: S105 - a type token
INVOKE = "lambda:InvokeFunction"
"""What RotateSecret also requires of its caller, on the rotation function (botocore's RotateSecret
documentation: "You also need lambda:InvokeFunction permissions on the rotation function")."""
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"

Document = dict[str, Any]
Context = Mapping[str, str | Sequence[str]]


class UnsupportedPolicy(ValueError):
    """A policy uses an element or a condition operator this evaluator does not implement."""


# What the program declares ----------------------------------------------------------------------


@dataclass(frozen=True)
class NamedPolicy:
    """A managed policy attached to a principal."""

    name: str
    arn: str
    document: Document


@dataclass(frozen=True)
class Principal:
    """A role the program gives rights to, and everything attached to it."""

    arn: str
    name: str
    policies: tuple[NamedPolicy, ...]
    """Identity policies the program declares (customer-managed, rendered by `components.iam`)."""
    external_policies: tuple[str, ...] = ()
    """Attached policy ARNs the program does not declare (AWS-managed, e.g. Lambda VPC access):
    not evaluated; none of them grants a Secrets Manager action."""

    @cached_property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class SecretInfo:
    """One secret as AWS would know it."""

    name: str
    """`<app>/<env>/<name>`."""
    arn: str
    region: str
    tags: Mapping[str, str]
    resource_policy: Document | None
    kms_key_id: str
    recovery_window_days: int | None
    rotation_function: str | None = None
    """The ARN of the function its rotation schedule invokes (None: no schedule declared)."""
    secret_type: str = ""
    """A managed external secret's partner Type (`secretsmanager:resource/Type`); empty for every other."""

    @cached_property
    def environment(self) -> str:
        return self.tags.get("environment", "")

    @cached_property
    def account_id(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class KeyInfo:
    """One KMS key and its key policy."""

    arn: str
    region: str
    environment: str
    policy: Document


@dataclass(frozen=True)
class AccessModel:
    """Everything access is decided from."""

    account_id: str
    region: str
    principals: tuple[Principal, ...]
    secrets: tuple[SecretInfo, ...]
    keys: tuple[KeyInfo, ...]

    def key_of(self, secret: SecretInfo) -> KeyInfo | None:
        """The key that encrypts a secret (by ARN; else the environment's key in the secret's region)."""
        for key in self.keys:
            if key.arn == secret.kms_key_id:
                return key
        for key in self.keys:
            if key.environment == secret.environment and key.region == secret.region:
                return key
        return None

    def principal(self, name_or_arn: str) -> Principal:
        for p in self.principals:
            if name_or_arn in (p.arn, p.name):
                return p
        raise KeyError(name_or_arn)


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def _document(value: Any, what: str) -> Document:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise UnsupportedPolicy(f"{what}: policy is not a JSON document")
    return value


def _role_arns_in(documents: Iterable[Document]) -> dict[str, str]:
    """Role name -> full role ARN, as key policies name them (keeps a role's path)."""
    found: dict[str, str] = {}
    for doc in documents:
        for statement in _statements(doc):
            for values in (statement.get("Principal") or {}).values() if isinstance(
                    statement.get("Principal"), dict) else ():
                for arn in _as_list(values):
                    if ":role/" in arn:
                        found[arn.rsplit("/", 1)[1]] = arn
    return found


def collect(resources: Sequence[CollectedResource], *, account_id: str, region: str) -> AccessModel:
    """The principals, secrets and keys a preview run declares (resources of one or several stacks)."""
    by_parent: dict[str | None, list[tuple[CollectedResource, dict[str, Any]]]] = {}
    typed: dict[str, list[tuple[CollectedResource, dict[str, Any]]]] = {}
    for resource in resources:
        inputs = plain(resource.inputs)
        by_parent.setdefault(resource.parent, []).append((resource, inputs))
        typed.setdefault(resource.type, []).append((resource, inputs))

    # Keys: the alias beside a key (same parent component) carries the key id.
    keys: list[KeyInfo] = []
    for resource, inputs in typed.get(KEY, []):
        if not _known(inputs.get("policy")):
            continue
        key_region = inputs.get("region") or region
        key_id = next((i.get("targetKeyId") for r, i in by_parent.get(resource.parent, [])
                       if r.type == ALIAS and _known(i.get("targetKeyId"))), None)
        keys.append(KeyInfo(
            arn=f"arn:aws:kms:{key_region}:{account_id}:key/{key_id or resource.name}",
            region=key_region, environment=(inputs.get("tags") or {}).get("environment", ""),
            policy=_document(inputs["policy"], f"key {resource.name}"),
        ))

    # Rotation schedules: secret ARN -> the function RotateSecret invokes.
    functions = {str(i["secretId"]): str(i["rotationLambdaArn"]) for _r, i in typed.get(SECRET_ROTATION, [])
                 if _known(i.get("secretId")) and _known(i.get("rotationLambdaArn"))}

    # Secrets: the resource policy beside a secret (same parent component) carries its ARN.
    secrets: list[SecretInfo] = []
    for resource, inputs in typed.get(SECRET, []):
        name = inputs.get("name") or resource.name
        sibling = next(((r, i) for r, i in by_parent.get(resource.parent, []) if r.type == SECRET_POLICY), None)
        found = sibling[1].get("secretArn") if sibling else None
        # Without a resource policy the ARN is not among the inputs: a stand-in suffix, as AWS adds one.
        arn = str(found) if _known(found) else f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-AbCdEf"
        policy = sibling[1].get("policy") if sibling else None
        window = inputs.get("recoveryWindowInDays")
        secrets.append(SecretInfo(
            name=name, arn=arn, region=arn.split(":")[3], tags=dict(inputs.get("tags") or {}),
            resource_policy=_document(policy, f"secret {name}") if _known(policy) else None,
            kms_key_id=inputs.get("kmsKeyId") or "", recovery_window_days=int(window) if window is not None else None,
            rotation_function=functions.get(arn),
            secret_type=str(inputs.get("type") or ""),
        ))

    # Principals: policies by ARN, attachments by role name, and the roles the program creates.
    policies: dict[str, NamedPolicy] = {}
    for resource, inputs in typed.get(POLICY, []):
        if not _known(inputs.get("policy")):
            continue
        name = inputs.get("name") or resource.name
        arn = f"arn:aws:iam::{account_id}:policy{inputs.get('path') or '/'}{name}"
        policies[arn] = NamedPolicy(name=name, arn=arn, document=_document(inputs["policy"], f"policy {name}"))
    attached: dict[str, list[str]] = {}
    for _resource, inputs in typed.get(ROLE, []):
        if _known(inputs.get("name")):
            attached.setdefault(inputs["name"], [])
    for _resource, inputs in typed.get(ATTACHMENT, []):
        role, policy_arn = inputs.get("role"), inputs.get("policyArn")
        if _known(role) and _known(policy_arn):
            attached.setdefault(str(role), []).append(str(policy_arn))
    arns = _role_arns_in(k.policy for k in keys)
    principals = tuple(
        Principal(
            arn=arns.get(role, f"arn:aws:iam::{account_id}:role/{role}"), name=role,
            policies=tuple(sorted((policies[a] for a in set(arns_) if a in policies), key=lambda p: p.name)),
            external_policies=tuple(sorted({a for a in arns_ if a not in policies})),
        )
        for role, arns_ in sorted(attached.items())
    )
    return AccessModel(
        account_id=account_id, region=region, principals=principals,
        secrets=tuple(sorted(secrets, key=lambda s: s.name)), keys=tuple(sorted(keys, key=lambda k: k.arn)),
    )


# Requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One authorization request, with every policy that takes part in it."""

    principal: str
    action: str
    resource: str
    resource_account: str
    context: Mapping[str, str | tuple[str, ...]]
    identity_policies: tuple[NamedPolicy, ...]
    resource_policy: Document | None
    service: str = field(default="")

    def to_simulation(self) -> dict[str, Any]:
        """The request as `@cloud-copilot/iam-simulate`'s `runSimulation` takes it."""
        simulation: dict[str, Any] = {
            "request": {
                "principal": self.principal,
                "action": self.action,
                "resource": {"resource": self.resource, "accountId": self.resource_account},
                "contextVariables": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.context.items()},
            },
            "identityPolicies": [{"name": p.name, "policy": p.document} for p in self.identity_policies],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if self.resource_policy is not None:
            simulation["resourcePolicy"] = self.resource_policy
        return simulation


def principal_context(principal: Principal) -> dict[str, str | tuple[str, ...]]:
    return {
        "aws:PrincipalAccount": principal.account_id,
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalIsAWSService": "false",
    }


def secret_request(principal: Principal, secret: SecretInfo, operation: str,
                   extra_context: Mapping[str, str | tuple[str, ...]] | None = None) -> Request:
    """The request `operation` on `secret` by `principal` (the context the matrix uses, plus extras)."""
    context: dict[str, str | tuple[str, ...]] = {
        **principal_context(principal), "aws:ResourceTag/environment": secret.environment,
    }
    if operation == "delete" and secret.recovery_window_days is not None:
        # What `pulumi destroy` sends: the configured window, never a forced deletion.
        context["secretsmanager:RecoveryWindowInDays"] = str(secret.recovery_window_days)
        context["secretsmanager:ForceDeleteWithoutRecovery"] = "false"
    if secret.secret_type:
        context["secretsmanager:resource/Type"] = secret.secret_type
    context.update(extra_context or {})
    return Request(
        principal=principal.arn, action=OPERATIONS.get(operation, operation), resource=secret.arn,
        resource_account=secret.arn.split(":")[4], context=context, identity_policies=principal.policies,
        resource_policy=secret.resource_policy, service="secretsmanager",
    )


def invoke_request(principal: Principal, function_arn: str) -> Request:
    """`lambda:InvokeFunction` on a rotation function by `principal` (the function's own resource policy
    admits only Secrets Manager, so the caller's identity policies decide)."""
    return Request(
        principal=principal.arn, action=INVOKE, resource=function_arn, resource_account=function_arn.split(":")[4],
        context=principal_context(principal), identity_policies=principal.policies, resource_policy=None,
        service="lambda",
    )


def cell_requests(principal: Principal, secret: SecretInfo, operation: str) -> tuple[Request, ...]:
    """Every request one cell needs allowed: the operation's, and for `rotate` of a secret with a
    rotation function, the invocation of that function."""
    first = secret_request(principal, secret, operation)
    if operation == "rotate" and secret.rotation_function is not None:
        return first, invoke_request(principal, secret.rotation_function)
    return (first,)


def combine(outcomes: Iterable[str]) -> Outcome:
    """A cell that needs several requests: explicitly denied if one is, allowed only if all are."""
    found = list(outcomes)
    if "ExplicitlyDenied" in found:
        return "ExplicitlyDenied"
    return "Allowed" if found and all(o == "Allowed" for o in found) else "ImplicitlyDenied"


def evaluate_cell(principal: Principal, secret: SecretInfo, operation: str) -> Outcome:
    """One cell of the matrix, by the scanning evaluator."""
    return combine(evaluate(r) for r in cell_requests(principal, secret, operation))


def kms_request(principal: Principal, key: KeyInfo, action: str, *, via_service: str | None,
                extra_context: Mapping[str, str] | None = None) -> Request:
    """`action` on `key` by `principal`, through `via_service` (None: a direct call to KMS)."""
    context: dict[str, str | tuple[str, ...]] = {
        **principal_context(principal), "kms:CallerAccount": principal.account_id,
    }
    if via_service is not None:
        context["kms:ViaService"] = via_service
    context.update(extra_context or {})
    return Request(
        principal=principal.arn, action=action, resource=key.arn, resource_account=key.arn.split(":")[4],
        context=context, identity_policies=principal.policies, resource_policy=key.policy, service="kms",
    )


# The evaluator ----------------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _statements(document: Document) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _glob_body(glob: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(f"^{_glob_body(glob)}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@lru_cache(maxsize=4096)
def _any_pattern(globs: tuple[str, ...]) -> re.Pattern[str]:
    """One expression matching what any of `globs` matches (case-sensitive, as resources are)."""
    return re.compile("|".join(f"(?:^{_glob_body(g)}$)" for g in globs) or "(?!)", re.DOTALL)


def wildcard_match(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: `*` any run of characters (also none), `?` exactly one."""
    return bool(_pattern(glob, ignore_case).match(value))


def _any_match(globs: Iterable[str], value: str, *, ignore_case: bool = False) -> bool:
    return any(wildcard_match(g, value, ignore_case=ignore_case) for g in globs)


def _number(value: str) -> float:
    return float(value)


def _operator(name: str, values: list[str], present: list[str] | None) -> bool:
    """One condition operator on one key: `present` is the request's value(s), None when absent."""
    base, if_exists = (name[:-len("IfExists")], True) if name.endswith("IfExists") else (name, False)
    if base == "Null" and if_exists:
        raise UnsupportedPolicy(f"condition operator {name}")  # IAM: no IfExists with Null
    if present is None:
        if if_exists:
            return True
        # Negated operators match a request without the key; every other operator does not.
        if base in ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "NumericNotEquals"):
            return True
        if base == "Null":
            return any(v.lower() == "true" for v in values)
        if base in _OPERATORS:
            return False
        raise UnsupportedPolicy(f"condition operator {name}")
    if base == "Null":
        return any(v.lower() == "false" for v in values)
    test = _OPERATORS.get(base)
    if test is None:
        raise UnsupportedPolicy(f"condition operator {name}")
    if base.startswith(("StringNot", "ArnNot", "NumericNot")):
        return all(test(v, p) for p in present for v in values)
    return any(test(v, p) for p in present for v in values)


_OPERATORS: dict[str, Any] = {
    "StringEquals": lambda v, p: p == v,
    "StringNotEquals": lambda v, p: p != v,
    "StringEqualsIgnoreCase": lambda v, p: p.lower() == v.lower(),
    "StringLike": lambda v, p: wildcard_match(v, p),
    "StringNotLike": lambda v, p: not wildcard_match(v, p),
    "Bool": lambda v, p: p.lower() == v.lower(),
    "NumericEquals": lambda v, p: _number(p) == _number(v),
    "NumericNotEquals": lambda v, p: _number(p) != _number(v),
    "NumericLessThan": lambda v, p: _number(p) < _number(v),
    "NumericLessThanEquals": lambda v, p: _number(p) <= _number(v),
    "NumericGreaterThan": lambda v, p: _number(p) > _number(v),
    "NumericGreaterThanEquals": lambda v, p: _number(p) >= _number(v),
    "ArnEquals": lambda v, p: wildcard_match(v, p),
    "ArnLike": lambda v, p: wildcard_match(v, p),
    "ArnNotEquals": lambda v, p: not wildcard_match(v, p),
    "ArnNotLike": lambda v, p: not wildcard_match(v, p),
}


def _values(values: Any) -> list[str]:
    """A condition's values as strings (JSON booleans and numbers as IAM reads them)."""
    items = values if isinstance(values, list | tuple) else [values]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    return _conditions_hold_lowered(conditions, {k.lower(): v for k, v in context.items()})


def _conditions_hold_lowered(conditions: Mapping[str, Mapping[str, Any]], lowered: Context) -> bool:
    """`_conditions_hold` with the context's keys already lower-cased."""
    for operator, keys in conditions.items():
        if operator.startswith(("ForAnyValue:", "ForAllValues:")):
            qualifier, base = operator.split(":", 1)
            if base != "Null" and base.removesuffix("IfExists") not in _OPERATORS:
                raise UnsupportedPolicy(f"condition operator {operator}")
            for key, values in keys.items():
                requested = _as_list(lowered.get(key.lower()))
                # IAM: ForAllValues holds when every request value matches (also when there are none);
                # ForAnyValue when at least one does (never when there are none).
                matched = [_operator(base, _values(values), [p]) for p in requested]
                if not (all(matched) if qualifier == "ForAllValues" else any(matched)):
                    return False
            continue
        for key, values in keys.items():
            raw = lowered.get(key.lower())
            present = None if raw is None else _as_list(raw)
            if not _operator(operator, _values(values), present):
                return False
    return True


_KNOWN_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition"}


def _principal_matches(statement: dict[str, Any], principal: str) -> tuple[bool, bool]:
    """(matches, through the account only): does a resource policy statement name the principal?"""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal")
    named = statement.get("Principal")
    if named == "*":
        return True, False
    if not isinstance(named, dict):
        return False, False
    account = principal.split(":")[4]
    for kind, values in named.items():
        if kind != "AWS":
            continue
        for value in _as_list(values):
            if value == "*" or value == principal:
                return True, False
            if value in (account, f"arn:aws:iam::{account}:root"):
                return True, True
    return False, False


def _applies(statement: dict[str, Any], request: Request) -> bool:
    unknown = set(statement) - _KNOWN_ELEMENTS
    if unknown:
        raise UnsupportedPolicy(f"statement element {sorted(unknown)[0]}")
    if "NotAction" in statement:
        if _any_match(_as_list(statement["NotAction"]), request.action, ignore_case=True):
            return False
    elif not _any_match(_as_list(statement.get("Action")), request.action, ignore_case=True):
        return False
    if "NotResource" in statement:
        if _any_match(_as_list(statement["NotResource"]), request.resource):
            return False
    elif not _any_match(_as_list(statement.get("Resource")), request.resource):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request.context)


def evaluate(request: Request) -> Outcome:
    """AWS's decision for one request in one organisation-less account (no SCP, RCP or boundary)."""
    identity_allow = False
    for policy in request.identity_policies:
        for statement in _statements(policy.document):
            if _applies(statement, request):
                if statement["Effect"] == "Deny":
                    return "ExplicitlyDenied"
                identity_allow = True
    direct_allow = account_allow = False
    for statement in _statements(request.resource_policy or {}):
        matches, through_account = _principal_matches(statement, request.principal)
        if not matches or not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return "ExplicitlyDenied"
        if through_account:
            account_allow = True
        else:
            direct_allow = True
    same_account = request.principal.split(":")[4] == request.resource_account
    if request.service == "kms" and same_account:
        # A key policy is the root of trust: IAM policies count only if it delegates to the account.
        allowed = direct_allow or (account_allow and identity_allow)
    elif same_account:
        allowed = identity_allow or direct_allow
    else:
        # Across accounts (a secret or a key shared with another account's role), both accounts must allow:
        # the caller's identity policy and the resource or key policy (IAM user guide, "Cross-account policy
        # evaluation logic"; KMS developer guide, "Allowing users in other accounts to use a KMS key").
        allowed = identity_allow and (direct_allow or account_allow)
    return "Allowed" if allowed else "ImplicitlyDenied"


# The matrix -------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Decision:
    """One cell: may `principal` (role ARN) do `operation` to `secret` (`<app>/<env>/<name>`)?"""

    principal: str
    secret: str
    operation: str
    decision: Outcome


def requests(model: AccessModel) -> list[Request]:
    """Every cell's requests, in matrix order (principal, secret, operation)."""
    return [r for p in model.principals for s in model.secrets for op in OPERATIONS for r in cell_requests(p, s, op)]


class _Compiled:
    """One statement, checked once for elements and operators this evaluator knows, with its resource
    patterns compiled."""

    __slots__ = ("conditions", "conditions_key", "deny", "hits", "not_resource", "principal_hits", "resources",
                 "statement")

    def __init__(self, statement: dict[str, Any]) -> None:
        unknown = set(statement) - _KNOWN_ELEMENTS
        if unknown:
            raise UnsupportedPolicy(f"statement element {sorted(unknown)[0]}")
        conditions = statement.get("Condition") or {}
        for operator in conditions:
            # ForAllValues:/ForAnyValue: qualify an operator this evaluator knows (_conditions_hold_lowered).
            base = operator.split(":", 1)[1] if operator.startswith(("ForAnyValue:", "ForAllValues:")) else operator
            if base != "Null" and base.removesuffix("IfExists") not in _OPERATORS:
                raise UnsupportedPolicy(f"condition operator {operator}")
        self.statement = statement
        self.deny = statement.get("Effect") == "Deny"
        self.not_resource = "NotResource" in statement
        self.resources = tuple(_as_list(statement["NotResource"] if self.not_resource else statement.get("Resource")))
        self.conditions = conditions
        self.conditions_key = json.dumps(conditions, sort_keys=True, default=str)
        """Statements with the same conditions (every secret's resource policy) share their results."""
        self.hits: dict[str, bool] = {}
        """ARN -> whether one of the resource patterns matches it (the statement is shared by every
        principal it is attached to, so each ARN is matched once)."""
        self.principal_hits: dict[str, tuple[bool, bool]] = {}
        """Principal ARN -> `_principal_matches` (resource policies)."""

    def admits(self, action: str) -> bool:
        """Whether Action / NotAction let `action` through (what the index is built from)."""
        if "NotAction" in self.statement:
            return not _any_match(_as_list(self.statement["NotAction"]), action, ignore_case=True)
        return _any_match(_as_list(self.statement.get("Action")), action, ignore_case=True)

    def applies(self, cell: _Cell, index: AccessIndex) -> bool:
        """`_applies` for a request whose action this statement admits."""
        hit = self.hits.get(cell.secret.arn)
        if hit is None:
            hit = self.hits[cell.secret.arn] = _any_pattern(self.resources).match(cell.secret.arn) is not None
        if hit == self.not_resource:
            return False
        if not self.conditions:
            return True
        held_key = (self.conditions_key, cell.context_key)
        held = index.conditions_held.get(held_key)
        if held is None:
            lowered = {k.lower(): v for k, v in cell.request().context.items()}
            held = index.conditions_held[held_key] = _conditions_hold_lowered(self.conditions, lowered)
        return held


class _Cell:
    """One cell of the matrix; its request (and context) is built only when a condition needs it."""

    __slots__ = ("context_key", "operation", "principal", "secret")

    def __init__(self, principal: Principal, secret: SecretInfo, operation: str) -> None:
        self.principal, self.secret, self.operation = principal, secret, operation
        # secret_request's context is made of exactly these.
        window = str(secret.recovery_window_days) if operation == "delete" else ""
        self.context_key = (principal.arn, secret.environment, window, secret.secret_type)

    def request(self) -> Request:
        return secret_request(self.principal, self.secret, self.operation)


class AccessIndex:
    """The statements of an access model by action (each principal's identity policies, each
    secret's resource policy), and which resource patterns match which ARN (computed once per
    pattern list and ARN): the matrix looks only at the statements that can apply to a cell instead
    of scanning every statement. `decide` gives what `evaluate` gives for the same cell (the access
    tests compare both, and both with the independent simulator)."""

    def __init__(self, model: AccessModel, actions: Iterable[str] = OPERATIONS.values()) -> None:
        self.actions = tuple(actions)
        # Equal statements are compiled once, so what is cached on them (pattern hits by ARN, principal
        # matches) is shared: every secret's resource policy repeats the same few statements.
        compiled: dict[str, _Compiled] = {}

        def by_action(documents: Iterable[Document]) -> dict[str, tuple[_Compiled, ...]]:
            statements = []
            for document in documents:
                for statement in _statements(document):
                    key = json.dumps(statement, sort_keys=True, default=str)
                    if key not in compiled:
                        compiled[key] = _Compiled(statement)
                    statements.append(compiled[key])
            return {a: tuple(st for st in statements if st.admits(a)) for a in self.actions}

        self.identity = {p.arn: by_action(policy.document for policy in p.policies) for p in model.principals}
        self.resource = {s.arn: by_action([s.resource_policy] if s.resource_policy is not None else [])
                         for s in model.secrets}
        self.conditions_held: dict[tuple[str, tuple[str, ...]], bool] = {}
        """(statement, what the context is made of) -> whether its conditions hold."""
        self.invocations: dict[tuple[str, str], Outcome] = {}
        """(principal, function) -> may the principal invoke the function (few of them: scanned once)."""

    def decide(self, principal: Principal, secret: SecretInfo, operation: str) -> Outcome:
        """`evaluate_cell(principal, secret, operation)`, through the index."""
        outcome = self._decide(principal, secret, operation)
        if operation != "rotate" or secret.rotation_function is None or outcome == "ExplicitlyDenied":
            return outcome
        key = (principal.arn, secret.rotation_function)
        if key not in self.invocations:
            self.invocations[key] = evaluate(invoke_request(principal, secret.rotation_function))
        return combine((outcome, self.invocations[key]))

    def _decide(self, principal: Principal, secret: SecretInfo, operation: str) -> Outcome:
        """`evaluate(secret_request(principal, secret, operation))`, through the index."""
        cell = _Cell(principal, secret, operation)
        action = OPERATIONS.get(operation, operation)
        identity_allow = False
        for st in self.identity[principal.arn][action]:
            if st.applies(cell, self):
                if st.deny:
                    return "ExplicitlyDenied"
                identity_allow = True
        direct_allow = account_allow = False
        for st in self.resource[secret.arn][action]:
            found = st.principal_hits.get(principal.arn)
            if found is None:
                found = st.principal_hits[principal.arn] = _principal_matches(st.statement, principal.arn)
            matches, through_account = found
            if not matches or not st.applies(cell, self):
                continue
            if st.deny:
                return "ExplicitlyDenied"
            if through_account:
                account_allow = True
            else:
                direct_allow = True
        if principal.account_id == secret.account_id:
            allowed = identity_allow or direct_allow
        else:
            allowed = identity_allow and (direct_allow or account_allow)
        return "Allowed" if allowed else "ImplicitlyDenied"


def matrix(resources: Sequence[CollectedResource], *, account_id: str, region: str) -> list[Decision]:
    """For each principal, secret and operation (read, write, rotate, delete): Allowed, ImplicitlyDenied
    or ExplicitlyDenied. Pass the resources of several stacks together to check them against each other."""
    model = collect(resources, account_id=account_id, region=region)
    index = AccessIndex(model)
    return [
        Decision(principal=p.arn, secret=s.name, operation=op, decision=index.decide(p, s, op))
        for p in model.principals for s in model.secrets for op in OPERATIONS
    ]


def render(decisions: Sequence[Decision]) -> str:
    """A compact table: one row per principal and secret, one column per operation (A allowed,
    - implicitly denied, D explicitly denied). Principals without any allowed cell are summarised."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for d in decisions:
        cells.setdefault((d.principal, d.secret), {})[d.operation] = SYMBOLS[d.decision]
    if not cells:
        return "Access matrix: no principal is given any access\n"
    ops = list(OPERATIONS)
    names = {p: p.split("/")[-1] for p, _ in cells}
    width_p = max(len("principal"), *(len(n) for n in names.values()))
    width_s = max(len("secret"), *(len(s) for _, s in cells))
    header = f"{'principal':<{width_p}}  {'secret':<{width_s}}  " + " ".join(f"{o:<6}" for o in ops)
    lines = ["Access matrix (A allowed, - implicitly denied, D explicitly denied):", header.rstrip()]
    for (principal, secret), row in sorted(cells.items()):
        lines.append((f"{names[principal]:<{width_p}}  {secret:<{width_s}}  "
                      + " ".join(f"{row.get(o, '?'):<6}" for o in ops)).rstrip())
    return "\n".join(lines) + "\n"
