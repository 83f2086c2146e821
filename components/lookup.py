"""The roles named in stack config, looked up in the account before anything is created.

KMS refuses a key policy whose principal does not exist (MalformedPolicyDocument), and that error
names neither the role nor the config key. So every named role is looked up first, with the plain
(blocking) form of `aws.iam.get_role`: it runs before the first registration, so a missing role
stops `pulumi up` before anything is created, whereas the output form would only fail once earlier
resources (the rotation roles) were already applied.
"""

from __future__ import annotations

from collections.abc import Iterator

import pulumi_aws as aws

from components.errors import ConfigurationError
from components.settings import PROJECT, Principal, StackSettings


def named_roles(settings: StackSettings) -> Iterator[tuple[str, Principal]]:
    """(config key, role) for every role the stack config names."""
    key = f"{PROJECT}:principals"
    p = settings.principals
    yield from ((f"{key}.runtime", r) for r in p.runtime)
    yield from ((f"{key}.ci", r) for r in p.ci)
    yield from ((f"{key}.deployers", r) for r in p.deployers)
    for service, roles in sorted(p.services.items()):
        yield from ((f"{key}.services.{service}", r) for r in roles)

def role_arns(settings: StackSettings) -> dict[str, str]:
    """Role name -> the ARN IAM reports for it (with its path, which a bare name in config lacks)."""
    found: dict[str, str] = {}
    for where, role in named_roles(settings):
        if role.name in found:
            continue
        try:
            result = aws.iam.get_role(name=role.name)
        except Exception as exc:  # noqa: BLE001 - the engine reports a failed invoke as a bare Exception

            cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(
                settings.file, f"role '{role.name}' cannot be found in account {settings.account_id} ({cause}); "
                "create it first or correct the name", field=where,
            ) from None
        if role.arn != result.arn and role.arn.split(":role/", 1)[1] != role.name:
            # Config gave a full ARN with a path that is not the role's: a key policy naming it would
            # not match the role.
            raise ConfigurationError(
                settings.file, f"role '{role.name}' is {result.arn} in IAM, not {role.arn}", field=where,
            )
        found[role.name] = result.arn
    return found
