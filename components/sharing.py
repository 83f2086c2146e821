"""Sharing a secret with a role of another account (`shared_with` in the catalog).

A cross-account read needs three grants, each in the account that owns the policy (Secrets Manager
user guide, "Access AWS Secrets Manager secrets from a different account"): the secret's resource
policy names the role, the key policy lets the role decrypt through Secrets Manager, and the other
account attaches an identity policy to its role. The first two are this stack's (components/grants.py,
components/kms.py); the third is an output (`sharedWith`), because only that account can attach it.

This module holds the catalog's typed share and the checks that need the stack (its own account).
It imports nothing of the catalog, which imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.errors import ConfigurationError

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
"""IAM's role-name grammar (CreateRole RoleName: `[\\w+=,.@-]+`, 1-64 characters; ASCII only)."""
ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>[0-9]{12}):role(?P<path>/(?:[!-~]*/)?)(?P<name>[^/]+)$", re.ASCII)
"""A role ARN: `arn:aws:iam::<account>:role/<path/><name>` (CreateRole Path: `/`, or `/.../`, at most 512
characters of printable ASCII)."""
ROLE_PATH_MAX = 512
ROOT_ARN = re.compile(r"^arn:aws:iam::[0-9]*:root$")


class SharedWith(BaseModel):
    """One role of another account that may read the secret (GetSecretValue, DescribeSecret)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    account: str
    """The other account's id (12 digits, quoted in YAML so that leading zeros survive)."""
    role: str = Field(min_length=1, max_length=2048)
    """A role name in that account, or that role's ARN (a path is allowed). Never the account root."""
    environments: list[str] | None = Field(default=None, min_length=1)
    """Stacks this share applies to (production shares with the partner's production account); all when
    omitted. Each must be one of the catalog's environments."""

    @field_validator("account", mode="before")
    @classmethod
    def _account(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write the account id as a quoted string of 12 digits (a number loses leading zeros)")
        if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
            raise ValueError("is not a 12-digit AWS account id")
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value in ("*", "root") or ROOT_ARN.fullmatch(value):
            raise ValueError("a share names one role, never the account root or '*' (that would trust every "
                             "principal the other account allows)")
        if value.startswith("arn:"):
            match = ROLE_ARN.fullmatch(value)
            if not match or not ROLE_NAME.fullmatch(match.group("name")) or len(match.group("path")) > ROLE_PATH_MAX:
                raise ValueError("is not an IAM role ARN (arn:aws:iam::<account>:role/[<path>/]<name>)")
            return value
        if not ROLE_NAME.fullmatch(value):
            raise ValueError("is not an IAM role name (1-64 of letters, digits and + = , . @ _ -) or role ARN")
        return value

    @model_validator(mode="after")
    def _same_account(self) -> SharedWith:
        match = ROLE_ARN.fullmatch(self.role)
        if match and match.group("account") != self.account:
            raise ValueError(f"role ARN is in account {match.group('account')}, not {self.account}")
        return self

    @property
    def role_arn(self) -> str:
        """The role's ARN (a bare name is a role without a path)."""
        return self.role if self.role.startswith("arn:") else f"arn:aws:iam::{self.account}:role/{self.role}"


def check_unique(shares: Sequence[SharedWith]) -> Sequence[SharedWith]:
    """A role named twice (by name and by ARN, say) is one share: refuse the duplicate."""
    seen: set[str] = set()
    for share in shares:
        if share.role_arn in seen:
            raise ValueError(f"role {share.role_arn} is listed twice")
        seen.add(share.role_arn)
    return shares


@dataclass(frozen=True)
class Share:
    """One other account's roles and the secrets (catalog names) they may read."""

    account: str
    roles: Mapping[str, tuple[str, ...]]
    """Role ARN -> catalog names of the secrets it reads."""

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(sorted({s for names in self.roles.values() for s in names}))


def shares_of(secrets: Mapping[str, object], own_account: str, catalog_path: str, environment: str,
              environments: Sequence[str]) -> dict[str, Share]:
    """Every account this stack (of `environment`) shares with -> its roles and their secrets; refuses a share
    with the stack's own account (a role there reads through `consumers` and the stack's principals, not a
    resource policy) and a share limited to an environment the catalog does not have."""
    by_account: dict[str, dict[str, list[str]]] = {}
    for name, entry in secrets.items():
        for index, share in enumerate(getattr(entry, "shared_with", ()) or ()):
            unknown = sorted(set(share.environments or ()) - set(environments))
            if unknown:
                raise ConfigurationError(
                    catalog_path, f"environment '{unknown[0]}' is not one of the catalog's environments "
                    f"({', '.join(environments)})", secret=name, field=f"shared_with.{index}.environments",
                )
            if share.environments is not None and environment not in share.environments:
                continue
            if share.account == own_account:
                raise ConfigurationError(
                    catalog_path, f"account {own_account} is this stack's own account: a role there reads the "
                    "secret through 'consumers' and secrets-platform:principals, not through a share",
                    secret=name, field=f"shared_with.{index}.account",
                )
            by_account.setdefault(share.account, {}).setdefault(share.role_arn, []).append(name)
    return {account: Share(account, {arn: tuple(names) for arn, names in sorted(roles.items())})
            for account, roles in sorted(by_account.items())}


def role_shares(shares: Mapping[str, Share]) -> dict[str, tuple[str, ...]]:
    """Role ARN -> the secrets it reads, over every account."""
    return {arn: names for share in shares.values() for arn, names in share.roles.items()}


def roles_of(secret: str, shares: Mapping[str, Share]) -> tuple[str, ...]:
    """The other accounts' roles that read `secret`."""
    return tuple(sorted(arn for arn, names in role_shares(shares).items() if secret in names))


def check_shared_adoptions(shares: Mapping[str, Share], adopt: Mapping[str, object], catalog_path: str) -> None:
    """A secret adopted as it is keeps its own key, which may be AWS-managed (`aws/secretsmanager`); a secret
    under the AWS-managed key cannot be shared with another account (its key policy cannot be changed:
    Secrets Manager user guide, cross-account access). Every other secret is on the environment's key."""
    for share in shares.values():
        for name in share.secrets:
            adopted = adopt.get(name)
            if adopted is not None and not getattr(adopted, "imported", False):
                raise ConfigurationError(
                    catalog_path, "an adopted secret is shared only once it is on the environment's key: finish "
                    "the adoption (`imported: true` in secrets-platform:adopt) first", secret=name,
                    field="shared_with",
                )
