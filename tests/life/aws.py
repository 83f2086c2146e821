"""What Secrets Manager does over time and moto 5.2.5 does not: a clock, version deletion, label rules.

Each behaviour is a patch of moto's in-process backend (the ThreadedMotoServer of tests/servers.py serves the
same objects), applied by `aws_over_time(clock)` and undone on exit; everything else is moto's own.

- A clock. moto stamps versions with `time.time()`; here with the test's clock, so a test can let a year
  pass in a second.
- Version deletion. Quotas page (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html):
  "Secrets Manager removes unlabeled versions when there are more than 100, but it does not remove versions
  created less than 24 hours ago." `AwsOverTime.remove_old_versions()` does that, oldest first; moto never
  removes a version. When AWS runs it is not documented: the tests call it where they let time pass.
- Labels. UpdateSecretVersionStage reference: "Each staging label can be attached to only one version at a
  time", and RemoveFromVersionId: "If the label is attached and you either do not specify this parameter, or
  the version ID does not match, then the operation fails." PutSecretValue, VersionStages: "If you specify a
  staging label that's already associated with a different version of the same secret, then Secrets Manager
  removes the label from the other version". Only AWSCURRENT moving takes AWSPREVIOUS along; a version's other
  labels stay. moto replaces the previous AWSCURRENT version's labels with `["AWSPREVIOUS"]` on a
  PutSecretValue (dropping any label of the program's own), leaves a label requested by PutSecretValue on the
  version that had it too, and moves any label but AWSCURRENT onto a second version without a
  RemoveFromVersionId.
- RotateSecret with a stale AWSPENDING. AWS User Guide, "Lambda rotation functions"
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html): if
  AWSPENDING "is present but not attached to the same version as AWSCURRENT then any later invocation of
  RotateSecret assumes that a previous rotation request is still in progress and returns an error". moto 5.2.5
  refuses the opposite case (AWSPENDING on the AWSCURRENT version) and accepts this one.
- RotateSecret without RotationLambdaARN rotates with the function already configured (botocore's model: the
  ARN is given "for secrets that use a Lambda rotation function"; `ops rotate` and a scheduled rotation give
  none); moto 5.2.5 then forgets the function and moves AWSCURRENT without running it.
- RotateSecret with RotateImmediately=false (botocore's RotateSecret model): "This test creates an AWSPENDING
  version of the secret and then removes it." moto leaves that version labelled AWSPENDING, which would make
  every later RotateSecret fail under the rule above.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
KEPT_VERSIONS = 100
"""Above this many versions, Secrets Manager removes unlabelled ones (quotas page)."""
MIN_AGE = 24 * 3600
"""...but never one created less than 24 hours ago (quotas page)."""


@dataclass
class Clock:
    """Simulated time in seconds since the epoch (moto's `createdate` unit)."""

    now: float

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _ClockedTime:
    """The `time` module as moto's Secrets Manager models see it: `time()` is the clock's."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class AwsOverTime:
    """The patches in force, and AWS's removal of old versions."""

    clock: Clock
    removed: int = 0
    """Versions removed by `remove_old_versions` so far."""
    removed_from: dict[str, int] = field(default_factory=dict)
    """Secret ARN -> versions removed from it so far."""

    def remove_old_versions(self) -> int:
        """Remove unlabelled versions older than 24 hours from every secret with more than 100, oldest first."""
        from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

        removed = 0
        for account in secretsmanager_backends.values():
            for backend in account.values():
                for secret in backend.secrets.values():
                    if not isinstance(secret, FakeSecret):
                        continue
                    old = sorted((v["createdate"], vid) for vid, v in secret.versions.items()
                                 if not v["version_stages"] and v["createdate"] <= self.clock.now - MIN_AGE)
                    for _, vid in old[:max(0, len(secret.versions) - KEPT_VERSIONS)]:
                        del secret.versions[vid]
                        removed += 1
                        self.removed_from[secret.arn] = self.removed_from.get(secret.arn, 0) + 1
        self.removed += removed
        return removed


@contextlib.contextmanager
def aws_over_time(clock: Clock) -> Iterator[AwsOverTime]:
    """Apply the behaviours above to moto's Secrets Manager until exit."""
    import moto.secretsmanager.models as models
    from moto.secretsmanager.exceptions import InvalidParameterException, InvalidRequestException
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    state = AwsOverTime(clock)
    saved_time = models.time
    reset_original = FakeSecret.reset_default_version
    stage_original = SecretsManagerBackend.update_secret_version_stage
    rotate_original = SecretsManagerBackend.rotate_secret

    def holder(secret: FakeSecret, label: str) -> str | None:
        return next((vid for vid, v in secret.versions.items() if label in v["version_stages"]), None)

    def reset_default_version(self: FakeSecret, secret_version: dict[str, Any], version_id: str) -> None:
        # PutSecretValue with AWSCURRENT (or no stages): AWSCURRENT moves, AWSPREVIOUS follows it, every label the
        # request names leaves the version that had it; the previous version's other labels stay.
        previous = holder(self, CURRENT)
        for label in {*secret_version["version_stages"], CURRENT, PREVIOUS}:
            for vid, version in self.versions.items():
                if vid != version_id and label in version["version_stages"]:
                    version["version_stages"].remove(label)
        if previous is not None and previous != version_id:
            self.versions[previous]["version_stages"].append(PREVIOUS)
        self.versions[version_id] = secret_version
        self.default_version_id = version_id

    def update_secret_version_stage(self: SecretsManagerBackend, secret_id: str, version_stage: str,
                                    remove_from_version_id: str, move_to_version_id: str) -> tuple[str, str]:
        secret = self.secrets.get(secret_id)
        if isinstance(secret, FakeSecret) and version_stage != CURRENT:
            attached = holder(secret, version_stage)
            if move_to_version_id and attached == move_to_version_id and not remove_from_version_id:
                return secret.arn, secret.name  # already there: nothing to move
            if attached is not None and attached != move_to_version_id and remove_from_version_id != attached:
                raise InvalidParameterException(
                    f"Staging label {version_stage} is attached to version {attached}; "
                    "RemoveFromVersionId must name it.")
        return stage_original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)

    def rotate_secret(self: SecretsManagerBackend, secret_id: str, client_request_token: str | None = None,
                      rotation_lambda_arn: str | None = None, rotation_rules: dict[str, Any] | None = None,
                      rotate_immediately: bool = True) -> str:
        secret = self.secrets.get(secret_id)
        if isinstance(secret, FakeSecret):
            pending = holder(secret, PENDING)
            if pending is not None:
                if CURRENT not in secret.versions[pending]["version_stages"]:
                    raise InvalidRequestException(
                        "A previous rotation isn't complete. That rotation will be reattempted.")
                secret.versions[pending]["version_stages"].remove(PENDING)  # AWS starts the new rotation
        if isinstance(secret, FakeSecret) and rotation_lambda_arn is None:
            # RotateSecret without RotationLambdaARN uses the function already configured; moto forgets it.
            rotation_lambda_arn = secret.rotation_lambda_arn or None
        before = set(secret.versions) if isinstance(secret, FakeSecret) else set()
        created_with = secret.secret_string if isinstance(secret, FakeSecret) else None
        if isinstance(secret, FakeSecret) and not rotate_immediately:
            # moto gives the test's AWSPENDING version the value the secret was created with; AWS's current one
            # is the closest reading of "creates an AWSPENDING version" (the value is not documented).
            current = holder(secret, CURRENT)
            secret.secret_string = secret.versions[current].get("secret_string") if current else None
        try:
            result = rotate_original(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules,
                                     rotate_immediately)
        finally:
            if isinstance(secret, FakeSecret):
                secret.secret_string = created_with
        if isinstance(secret, FakeSecret) and not rotate_immediately:
            for vid in set(secret.versions) - before:  # the test's AWSPENDING version is removed again
                if CURRENT not in secret.versions[vid]["version_stages"]:
                    del secret.versions[vid]
        return result

    models.time = _ClockedTime(clock)  # type: ignore[assignment]
    FakeSecret.reset_default_version = reset_default_version  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    try:
        yield state
    finally:
        models.time = saved_time
        FakeSecret.reset_default_version = reset_original  # type: ignore[method-assign]
        SecretsManagerBackend.update_secret_version_stage = stage_original  # type: ignore[method-assign]
        SecretsManagerBackend.rotate_secret = rotate_original  # type: ignore[method-assign]


@contextlib.contextmanager
def lambda_on_clock(clock: Clock) -> Iterator[None]:
    """moto's Lambda functions with `LastModified` on the clock, moved by UpdateFunctionConfiguration.

    Lambda API reference, FunctionConfiguration.LastModified: "The date and time that the function was last
    updated"; rotation/consumers.py compares it with the rotation's time to decide whether a consumer function
    already runs a configuration newer than the rotation. moto 5.2.5 stamps functions with the machine's time at
    creation and never moves the stamp on UpdateFunctionConfiguration.
    """
    import datetime as dt

    import moto.awslambda.models as models
    from moto.awslambda.models import LambdaFunction

    saved_stamp = models.iso_8601_datetime_with_nanoseconds
    update_original = LambdaFunction.update_configuration

    def stamp() -> str:
        return dt.datetime.fromtimestamp(clock.now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")

    def update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
        self.last_modified = stamp()
        return update_original(self, config_updates)

    models.iso_8601_datetime_with_nanoseconds = stamp
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.iso_8601_datetime_with_nanoseconds = saved_stamp
        LambdaFunction.update_configuration = update_original  # type: ignore[method-assign]


@contextlib.contextmanager
def rotation_schedules() -> Iterator[None]:
    """RotateSecret's RotationRules kept as given: a `ScheduleExpression` (and `Duration`) turns rotation on, and
    DescribeSecret returns the rules as set.

    botocore's Secrets Manager model, RotationRulesType: AutomaticallyAfterDays, Duration, ScheduleExpression (one
    of the first and the last); DescribeSecret's RotationRules is the same shape. moto 5.2.5 keeps only
    AutomaticallyAfterDays: with a ScheduleExpression it leaves RotationEnabled false (the rotation function then
    refuses the secret) and describes the rules as `AutomaticallyAfterDays: 0`.
    """
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    rotate_original = SecretsManagerBackend.rotate_secret
    describe_original = FakeSecret.to_dict
    kept: dict[int, dict[str, Any]] = {}

    def rotate_secret(self: SecretsManagerBackend, secret_id: str, client_request_token: str | None = None,
                      rotation_lambda_arn: str | None = None, rotation_rules: dict[str, Any] | None = None,
                      rotate_immediately: bool = True) -> str:
        secret = self.secrets.get(secret_id)
        if isinstance(secret, FakeSecret) and rotation_rules:
            kept[id(secret)] = {k: v for k, v in rotation_rules.items()
                                if k in ("AutomaticallyAfterDays", "Duration", "ScheduleExpression")}
            if rotation_rules.get("ScheduleExpression"):
                secret.rotation_enabled = True  # moto sets it only for AutomaticallyAfterDays
        return rotate_original(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules,
                               rotate_immediately)

    def to_dict(self: FakeSecret) -> dict[str, Any]:
        described = describe_original(self)
        if "RotationRules" in described and id(self) in kept:
            described["RotationRules"] = dict(kept[id(self)])
        return described

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    FakeSecret.to_dict = to_dict  # type: ignore[method-assign]
    try:
        yield
    finally:
        SecretsManagerBackend.rotate_secret = rotate_original  # type: ignore[method-assign]
        FakeSecret.to_dict = describe_original  # type: ignore[method-assign]
