"""IAM policy documents, built in one place from typed statements.

Components describe access as `Statement` objects; `document()` renders them as the JSON AWS
expects. Nothing else in the project writes policy JSON. Rendering refuses a statement that would
allow every action (`*` or `service:*`), so such a grant stops the program before anything is created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from components.errors import ConfigurationError

Effect = Literal["Allow", "Deny"]

SECRETS_MANAGER_SERVICE = "secretsmanager.amazonaws.com"


@dataclass(frozen=True)
class Statement:
    """One IAM statement."""

    sid: str
    """Statement id: says what the statement is for."""
    effect: Effect
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    """Resource ARNs or patterns; `*` only where the actions cannot be scoped (or in a key policy)."""
    principals: Mapping[str, tuple[str, ...]] | None = None
    """For resource policies (key policy, secret policy): `{"AWS": (...)}`, `{"Service": (...)}`."""
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    """`{operator: {key: values}}`."""
    not_principal: bool = False
    """Render `principals` as NotPrincipal (only for Deny statements)."""
    not_resource: bool = False
    """Render `resources` as NotResource (only for Deny statements: "everything but these")."""
    not_action: bool = False
    """Render `actions` as NotAction (only for Deny statements: "every action but these")."""


class PolicyError(ConfigurationError):
    """A statement the project refuses to render."""


def _check(statement: Statement, where: str) -> None:
    if statement.effect == "Allow":
        for action in statement.actions:
            if action == "*" or action.endswith(":*"):
                raise PolicyError(
                    where, f"statement '{statement.sid}' would allow '{action}'; grant named actions only",
                    field="actions",
                )
        if statement.not_principal or statement.not_resource:
            raise PolicyError(where, f"statement '{statement.sid}': NotPrincipal/NotResource only in a Deny")
        if statement.not_action:
            raise PolicyError(where, f"statement '{statement.sid}': NotAction only in a Deny")
        if statement.principals:
            for kind, values in statement.principals.items():
                if "*" in values:
                    raise PolicyError(
                        where, f"statement '{statement.sid}' allows any {kind} principal ('*')",
                        field="principals",
                    )
    if not statement.actions:
        raise PolicyError(where, f"statement '{statement.sid}' has no actions", field="actions")
    if not statement.resources:
        raise PolicyError(where, f"statement '{statement.sid}' has no resources", field="resources")


def _one_or_many(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else sorted(values)


def render(statements: Iterable[Statement], where: str) -> dict[str, object]:
    """The policy document as a dict, checked."""
    rendered: list[dict[str, object]] = []
    sids: set[str] = set()
    for statement in statements:
        _check(statement, where)
        if statement.sid in sids:
            raise PolicyError(where, f"statement id '{statement.sid}' is used twice")
        sids.add(statement.sid)
        body: dict[str, object] = {"Sid": statement.sid, "Effect": statement.effect}
        if statement.principals is not None:
            key = "NotPrincipal" if statement.not_principal else "Principal"
            body[key] = {kind: _one_or_many(v) for kind, v in sorted(statement.principals.items())}
        body["NotAction" if statement.not_action else "Action"] = _one_or_many(statement.actions)
        body["NotResource" if statement.not_resource else "Resource"] = _one_or_many(statement.resources)
        if statement.conditions:
            body["Condition"] = {
                op: {key: _one_or_many(vals) for key, vals in sorted(keys.items())}
                for op, keys in sorted(statement.conditions.items())
            }
        rendered.append(body)
    return {"Version": "2012-10-17", "Statement": rendered}


MANAGED_POLICY_LIMIT = 6144
"""IAM's limit on a managed policy document, whitespace excluded."""
SECRET_POLICY_LIMIT = 20480
"""Secrets Manager's limit on a secret's resource policy."""
KEY_POLICY_LIMIT = 32768
"""KMS's limit on a key policy."""


SPLIT_HINT = "split the secrets among more consumers or fewer regions"
"""What shrinks a policy that lists secrets (each consumer's, the rotation function's)."""


def document(statements: Iterable[Statement], where: str, limit: int = MANAGED_POLICY_LIMIT,
             hint: str = SPLIT_HINT) -> str:
    """The policy document as stable JSON (sorted, so an unchanged policy never shows a diff)."""
    text = json.dumps(render(statements, where), indent=None, separators=(",", ":"))
    if len(text) > limit:
        raise PolicyError(
            where, f"the policy document has {len(text)} characters, over AWS's limit of {limit}; {hint}",
            field="statements",
        )
    return text


# ARNs -------------------------------------------------------------------------------------------


def account_root(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def secret_arn_pattern(region: str, account_id: str, secret_name: str) -> str:
    """The ARN of a secret by name: Secrets Manager appends `-` and six random characters."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secret_name}-??????"


def environment_secrets_pattern(region: str, account_id: str, app: str, environment: str) -> str:
    """Every secret of one environment of one application."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{app}/{environment}/*"


def secrets_manager_via(region: str) -> str:
    """The `kms:ViaService` value for Secrets Manager in a region."""
    return f"secretsmanager.{region}.amazonaws.com"


def trust_policy(service: str, account_id: str) -> str:
    """A role's trust policy: only `service`, and only on behalf of this account (confused deputy)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AssumedByService",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }],
    }, separators=(",", ":"))


def merged_document(statements: Iterable[Statement], existing: Sequence[Mapping[str, object]], where: str,
                    limit: int = SECRET_POLICY_LIMIT) -> str:
    """The platform's statements followed by an existing policy's own statements, kept as they are (an adopted
    secret's resource policy: PutResourcePolicy replaces the whole document, so what the team had stays)."""
    document = render(statements, where)
    merged = {**document, "Statement": [*document["Statement"], *existing]}  # type: ignore[misc]
    text = json.dumps(merged, indent=None, separators=(",", ":"))
    if len(text) > limit:
        raise PolicyError(where, f"the policy document has {len(text)} characters, over AWS's limit of {limit}",
                          field="statements")
    return text
