"""What the account already holds, looked up before the first resource is registered.

Two things make `pulumi up` fail half-way through that no stack config shows:

- a secret name scheduled for deletion (a `pulumi destroy`, or a DeleteSecret, within its recovery
  window). CreateSecret refuses the name; the provider retries for two minutes and then fails
  (terraform-provider-aws `internal/service/secretsmanager/secret.go`, resourceSecretCreate:
  `RetryWhen(ctx, PropagationTimeout, ...)` on InvalidRequestException "scheduled for deletion";
  `consts.go`: `PropagationTimeout = 2 * time.Minute`). Restoring the secret alone does not help: the
  destroy also scheduled the environment's KMS key for deletion, and a secret under a key pending
  deletion cannot be read.
- a region the account has not enabled: every resource there fails.

pulumi-aws has no data source that lists secrets scheduled for deletion: `aws.secretsmanager.get_secrets`
sends ListSecrets without IncludePlannedDeletion and returns names and ARNs only, not DeletedDate or
KmsKeyId (terraform-provider-aws `secrets_data_source.go`, line 45: `&secretsmanager.ListSecretsInput{}`).
So the program asks Secrets Manager itself, through botocore (already a dependency of the program),
with the region and credentials the stack gives the provider (`aws:region`, `aws:profile`,
`aws:accessKey`/`aws:secretKey`/`aws:token`, then each role of `aws:assumeRoles`), short timeouts,
few retries and a page cap: ONE paginated ListSecrets filtered by the stack's name prefix (100 per
page), then one DescribeKey per distinct key of a scheduled secret. The offline preview has no account:
it installs a stand-in (`stand_in`, answered by preview/mocks.py), so the same code path runs there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.errors import ConfigurationError
from components.settings import PROJECT, StackSettings, opt_in_regions

PAGE_SIZE = 100
"""ListSecrets MaxResults: at most 100 (botocore's model)."""
MAX_PAGES = 50
"""5,000 secrets under one stack's prefix; more stops with a message instead of paging on."""
CONNECT_TIMEOUT, READ_TIMEOUT = 5, 15
"""Seconds: a lookup that hangs must not hold `pulumi up` for botocore's default 60 s per attempt."""
MAX_ATTEMPTS = 3
"""botocore's standard retry mode: the first call and two retries on throttling or a 5xx."""
PENDING_DELETION = "PendingDeletion"
"""kms:DescribeKey KeyState of a key scheduled for deletion (it is also disabled)."""
NOT_OPTED_IN = "not-opted-in"
"""ec2:DescribeRegions OptInStatus of an opt-in region the account has not enabled."""
SHOWN = 3
"""Scheduled names quoted in the message; the rest are counted."""


@dataclass(frozen=True)
class ListedSecret:
    """One ListSecrets entry, as far as the checks need it."""

    name: str
    deleted: str | None = None
    """DeletedDate (ISO), when DeleteSecret was called; None for an active secret."""
    kms_key_id: str | None = None
    """KmsKeyId as ListSecrets gives it (ARN, id or alias); None: the AWS managed key."""
    primary_region: str | None = None
    """PrimaryRegion: set on a replica (its primary's region); None for a standalone secret."""


@dataclass(frozen=True)
class AssumedRole:
    """One entry of the provider's `aws:assumeRoles` (what these read-only lookups need of it)."""

    role_arn: str
    session_name: str = "secrets-platform-checks"
    external_id: str | None = None


def assumed_roles(raw: str | None, file: str) -> tuple[AssumedRole, ...]:
    """`aws:assumeRoles` as stack config holds it (JSON: a list of {roleArn, sessionName, externalId, ...})."""
    if not raw:
        return ()
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigurationError(file, "is not a list of roles (roleArn, sessionName, externalId)",
                                 field="aws:assumeRoles") from None
    if isinstance(entries, dict):
        entries = [entries]
    roles = []
    for entry in entries if isinstance(entries, list) else [None]:
        if not isinstance(entry, dict) or not isinstance(entry.get("roleArn"), str) or not entry["roleArn"]:
            raise ConfigurationError(file, "every entry needs a roleArn", field="aws:assumeRoles")
        roles.append(AssumedRole(role_arn=entry["roleArn"],
                                 session_name=str(entry.get("sessionName") or AssumedRole.session_name),
                                 external_id=str(entry["externalId"]) if entry.get("externalId") else None))
    return tuple(roles)


class AccountLookup(Protocol):
    """The two read-only questions asked of the account."""

    def secrets_under(self, prefix: str) -> list[ListedSecret]:
        """Every secret whose name starts with `prefix`, including those scheduled for deletion."""

    def key_state(self, key_id: str) -> str | None:
        """The key's KeyState (`Enabled`, `PendingDeletion`, ...), or None when it cannot be described."""


class LookupFailed(Exception):
    """An AWS or connection error of a lookup (or too many pages), in one line without a value."""

    def __init__(self, message: str, *, denied_or_down: bool = True):
        super().__init__(message)
        self.denied_or_down = denied_or_down
        """An AWS or connection error, where the permission is worth naming (not the page cap)."""


class AwsAccountLookup:
    """The lookups against AWS, with the stack's own region and credentials."""

    def __init__(self, region: str, *, profile: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, token: str | None = None, endpoint_url: str | None = None,
                 assume_roles: Sequence[AssumedRole] = ()):
        import botocore.session
        from botocore.config import Config

        session = botocore.session.Session(profile=profile)
        if access_key and secret_key:
            session.set_credentials(access_key, secret_key, token)
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"})
        # The provider's `aws:assumeRoles`: each role assumed with the previous one's credentials, so the
        # lookups ask the account (and the identity) the resources are created in.
        for role in assume_roles:
            sts = session.create_client("sts", region_name=region, config=config, endpoint_url=endpoint_url)
            extra = {"ExternalId": role.external_id} if role.external_id else {}
            credentials = sts.assume_role(RoleArn=role.role_arn, RoleSessionName=role.session_name,
                                          **extra)["Credentials"]
            session.set_credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"],
                                    credentials["SessionToken"])
        self.region = region
        self.calls: Counter[str] = Counter()
        """Operation name -> requests sent (retries included), for the record and the tests."""
        self._sm = session.create_client("secretsmanager", region_name=region, config=config,
                                         endpoint_url=endpoint_url)
        self._kms = session.create_client("kms", region_name=region, config=config, endpoint_url=endpoint_url)
        for client in (self._sm, self._kms):
            client.meta.events.register("before-send", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        self.calls[name.rsplit(".", 1)[-1] or "?"] += 1

    def secrets_under(self, prefix: str) -> list[ListedSecret]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[ListedSecret] = []
        pages = self._sm.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=True,
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        try:
            for number, page in enumerate(pages, start=1):
                for entry in page.get("SecretList", []):
                    name = str(entry.get("Name", ""))
                    # The name filter is a prefix match; keep exactly the prefix (not a longer environment).
                    if name.startswith(prefix):
                        deleted = entry.get("DeletedDate")
                        found.append(ListedSecret(
                            name=name, kms_key_id=entry.get("KmsKeyId") or None,
                            primary_region=entry.get("PrimaryRegion") or None,
                            deleted=deleted.astimezone(dt.UTC).isoformat(timespec="seconds")
                            if isinstance(deleted, dt.datetime) else None))
                if number >= MAX_PAGES and page.get("NextToken"):
                    raise LookupFailed(f"more than {MAX_PAGES * PAGE_SIZE} secrets under {prefix}, the most this "
                                       "check pages through", denied_or_down=False)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise LookupFailed(f"ListSecrets failed: {error.get('Code', 'error')}: "
                               f"{str(error.get('Message', '')).strip()[:200]}") from None
        except BotoCoreError as exc:
            raise LookupFailed(f"ListSecrets failed: {str(exc)[:200]}") from None
        return found

    def key_state(self, key_id: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            metadata = self._kms.describe_key(KeyId=key_id).get("KeyMetadata", {})
        except (ClientError, BotoCoreError):
            return None  # reported as "state unknown", with the command that shows it
        state = metadata.get("KeyState")
        return str(state) if state else None


_stand_in: AccountLookup | None = None


@contextlib.contextmanager
def stand_in(lookup: AccountLookup) -> Iterator[None]:
    """Answer the program's account lookups with `lookup` (the offline preview's mocks) while inside."""
    global _stand_in
    previous, _stand_in = _stand_in, lookup
    try:
        yield
    finally:
        _stand_in = previous


def stack_lookup(settings: StackSettings) -> AccountLookup:
    """The stand-in when one is installed, else botocore with the provider's settings from stack config."""
    if _stand_in is not None:
        return _stand_in
    from botocore.exceptions import BotoCoreError, ClientError

    aws_config = pulumi.Config("aws")
    if aws_config.get("assumeRoleWithWebIdentity"):
        # The provider would act as that role; these lookups ask the base identity and could miss what is there.
        pulumi.log.warn("aws:assumeRoleWithWebIdentity is set: the checks made before the first resource (names "
                        "scheduled for deletion) use the base credentials, not that role")
    profile = aws_config.get("profile")
    roles = assumed_roles(aws_config.get("assumeRoles"), settings.file)
    try:
        return AwsAccountLookup(
            settings.region, profile=profile, assume_roles=roles,
            # Credentials, not settings: read without printing (plain get warns about secret config keys).
            access_key=_raw("aws:accessKey"), secret_key=_raw("aws:secretKey"), token=_raw("aws:token"),
        )
    except ClientError as exc:  # AssumeRole refused
        error = exc.response.get("Error", {})
        raise ConfigurationError(settings.file, f"cannot assume the stack's role for the checks made before the first "
                                 f"resource: {error.get('Code', 'error')}: {str(error.get('Message', ''))[:200]}",
                                 field="aws:assumeRoles") from None
    except BotoCoreError as exc:  # an unknown profile, a malformed shared config file, no credentials
        raise ConfigurationError(settings.file, f"cannot use the stack's AWS credentials: {str(exc)[:200]}",
                                 field="aws:profile" if profile else None) from None


def _raw(key: str) -> str | None:
    value = pulumi.runtime.get_config(key)
    return value if isinstance(value, str) and value else None


def check_scheduled_deletions(settings: StackSettings, app: str, names: Iterable[str],
                              lookup: AccountLookup) -> None:
    """Stop when a secret name the stack creates is scheduled for deletion, naming what to run."""
    prefix = f"{app}/{settings.environment}/"
    wanted = set(names)
    try:
        listed = lookup.secrets_under(prefix)
    except LookupFailed as exc:
        hint = ("the role running `pulumi up` needs secretsmanager:ListSecrets (README, \"Real use\")"
                if exc.denied_or_down else "remove the secrets this stack no longer uses")
        raise ConfigurationError(
            settings.file, f"cannot list the secrets under {prefix} in {settings.region} ({exc}); {hint}",
        ) from None
    scheduled = sorted((s for s in listed if s.deleted and s.name in wanted), key=lambda s: s.name)
    if not scheduled:
        return
    region = f"--region {settings.region}"
    first = scheduled[0].name
    shown = ", ".join(f"{s.name} (deleted {s.deleted[:10] if s.deleted else '?'})" for s in scheduled[:SHOWN])
    more = (f" and {len(scheduled) - SHOWN} more (`aws secretsmanager list-secrets {region} "
            f"--include-planned-deletion --filters Key=name,Values={prefix}`)") if len(scheduled) > SHOWN else ""
    keys = sorted({s.kms_key_id for s in scheduled if s.kms_key_id})
    states = {key: lookup.key_state(key) for key in keys}
    pending = [k for k in keys if states[k] == PENDING_DELETION]
    unknown = [k for k in keys if states[k] is None]
    steps = [f"restore it (`aws secretsmanager restore-secret {region} --secret-id {first}`"
             + (", and each other one" if len(scheduled) > 1 else "") + ")"]
    steps += [f"cancel its key's deletion and enable the key (`aws kms cancel-key-deletion {region} --key-id {k}` "
              f"then `aws kms enable-key {region} --key-id {k}`)" for k in pending]
    steps += [f"check its key with `aws kms describe-key {region} --key-id {k}` (kms:DescribeKey failed here) and "
              "cancel its deletion if it is PendingDeletion" for k in unknown]
    raise ConfigurationError(
        settings.file,
        f"{len(scheduled)} secret name(s) this stack creates {'is' if len(scheduled) == 1 else 'are'} scheduled for "
        f"deletion: {shown}{more}; Secrets Manager refuses to create them until the recovery window ends. To keep "
        f"the values: {'; '.join(steps)}; then adopt it into the stack (`python -m ops draft --stack "
        f"{settings.stack} --from-aws {prefix} {region}`, README \"Recreating a stack after `pulumi destroy`\"). "
        f"To start over with new values: `aws secretsmanager delete-secret {region} --force-delete-without-recovery "
        f"--secret-id {first}`" + (" for each" if len(scheduled) > 1 else ""),
    )


def not_enabled_regions(settings: StackSettings) -> list[str]:
    """The stack's opt-in regions the account has not enabled (one DescribeRegions through the provider)."""
    candidates = opt_in_regions(settings)
    if not candidates:
        return []  # regions every account has: nothing to ask
    result = aws.get_regions(all_regions=True, filters=[aws.GetRegionsFilterArgs(
        name="opt-in-status", values=[NOT_OPTED_IN])])
    disabled = set(result.names or [])
    return [r for r in candidates if r in disabled]


def check_regions(settings: StackSettings) -> None:
    """A region the account has not enabled stops `pulumi up`; a preview warns."""
    candidates = opt_in_regions(settings)
    try:
        disabled = not_enabled_regions(settings)
    except Exception as exc:  # noqa: BLE001 - the engine reports a failed invoke as a bare Exception
        cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            settings.file, f"cannot look up the account's regions ({cause}); the role running `pulumi up` needs "
            "ec2:DescribeRegions (README, \"Real use\")", field="aws:region",
        ) from None
    for region in candidates:
        command = f"`aws account enable-region --region-name {region}`"
        if region in disabled and not pulumi.runtime.is_dry_run():
            field = "aws:region" if region == settings.region else f"{PROJECT}:replicaRegions"
            raise ConfigurationError(
                settings.file, f"{region} is an opt-in region that account {settings.account_id} has not enabled, so "
                f"every resource there would fail half-way through `pulumi up`; enable it first with {command} "
                f"(then wait until `aws account get-region-opt-status --region-name {region}` says ENABLED)",
                field=field,
            )
        if region in disabled:
            pulumi.log.warn(f"{region} is an opt-in region that account {settings.account_id} has not enabled: "
                            f"`pulumi up` stops before the first resource until it is ({command})")
        else:
            pulumi.log.warn(f"{region} is an opt-in region: every resource there fails until account "
                            f"{settings.account_id} enables it ({command}); `pulumi up` checks it first")


def check_recovered(settings: StackSettings, app: str, lookup: AccountLookup) -> None:
    """A recovery stack (components/recovery.py): no secret of its environment in its region is still a replica."""
    from components.recovery import check_promoted

    assert settings.recovery is not None
    prefix = f"{app}/{settings.environment}/"
    try:
        listed = lookup.secrets_under(prefix)
    except LookupFailed as exc:
        raise ConfigurationError(settings.file, f"cannot list the secrets under {prefix} in {settings.region} "
                                 f"({exc}); the role running `pulumi up` needs secretsmanager:ListSecrets") from None
    check_promoted(settings.recovery, listed, settings.file, settings.region)
