"""The one dispatcher of Secrets Manager's four-step rotation protocol.

Secrets Manager calls the function four times per rotation with the same ClientRequestToken
(the id of the new version): createSecret, setSecret, testSecret, finishSecret. Any step may be
retried, run twice or run after the function died half-way, so every step is idempotent:

- createSecret reuses an AWSPENDING value that already exists for the token; a secret created
  without a value (no AWSCURRENT) gets its first value from strategies that need no credential
  to make one (`makes_first_value`), so that value never passes through Pulumi state;
- setSecret is the strategy's job, which first checks whether the pending credential already works;
- finishSecret is a no-op once the version is AWSCURRENT (it resumes the strategy's finish hook
  only if the previous run died between moving AWSCURRENT and clearing AWSPENDING).

Strategies (token, PostgreSQL, Redis, JWT keys) plug in through `Strategy`; none of them reads
the event, checks stages or moves labels.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from botocore.exceptions import BotoCoreError, ClientError

from rotation import template
from rotation.errors import (
    ConfigurationError,
    ExternalServiceError,
    RotationError,
    RotationNotEnabledError,
    SecretFormatError,
    SecretNotAllowedError,
    VersionStageError,
)

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
STEPS: tuple[Step, ...] = get_args(Step)

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
# How many unlabelled (deprecated) versions setSecret may try as a last resort.
MAX_OLDER_VERSIONS = 5

logger = logging.getLogger(__name__)


class SecretStore:
    """Secrets Manager calls for one secret, through an injected boto3 client."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            # AWS error messages name ids and labels, never the SecretString.
            raise ExternalServiceError(
                f"Secrets Manager {operation} failed for {kwargs.get('SecretId', self.secret_id)}: "
                f"{error.get('Code', '?')}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(
                f"Secrets Manager {operation} failed for {self.secret_id}: {type(exc).__name__}"
            ) from exc
        return result

    def describe(self) -> dict[str, Any]:
        return self._call("describe_secret", SecretId=self.secret_id)

    def value(self, stage: str, version_id: str | None = None, *, missing_ok: bool = False) -> str | None:
        """SecretString of a stage (and version); None if absent and `missing_ok`."""
        kwargs: dict[str, Any] = {"SecretId": self.secret_id, "VersionStage": stage}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            result = self._client.get_secret_value(**kwargs)
        except ClientError as exc:
            if missing_ok and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            code = exc.response.get("Error", {}).get("Code", "?")
            raise ExternalServiceError(
                f"Secrets Manager get_secret_value failed for {self.secret_id} ({stage}): {code}"
            ) from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(
                f"Secrets Manager get_secret_value failed for {self.secret_id}: {type(exc).__name__}"
            ) from exc
        if "SecretString" not in result:
            raise SecretFormatError(f"secret {self.secret_id} ({stage}) has no SecretString (binary secret?)")
        return str(result["SecretString"])

    def required(self, stage: str, version_id: str | None = None) -> str:
        found = self.value(stage, version_id)
        assert found is not None  # value() raises unless missing_ok
        return found

    def put_pending(self, token: str, value: str) -> None:
        self._call(
            "put_secret_value",
            SecretId=self.secret_id,
            ClientRequestToken=token,
            SecretString=value,
            VersionStages=[PENDING],
        )

    def move_stage(self, stage: str, to_version: str | None, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": self.secret_id, "VersionStage": stage}
        if to_version:
            kwargs["MoveToVersionId"] = to_version
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        self._call("update_secret_version_stage", **kwargs)

    def older_values(self, skip: set[str]) -> Iterator[tuple[str, str]]:
        """(version id, value) of unlabelled versions, newest first, at most MAX_OLDER_VERSIONS."""
        listing = self._call("list_secret_version_ids", SecretId=self.secret_id, IncludeDeprecated=True)
        versions = [
            v
            for v in listing.get("Versions", [])
            if v["VersionId"] not in skip and not {CURRENT, PENDING, PREVIOUS} & set(v.get("VersionStages", []))
        ]
        versions.sort(key=lambda v: str(v.get("CreatedDate", "")), reverse=True)
        for version in versions[:MAX_OLDER_VERSIONS]:
            try:
                result = self._client.get_secret_value(SecretId=self.secret_id, VersionId=version["VersionId"])
            except ClientError:
                continue  # expired or never given a value: nothing to try
            if "SecretString" in result:
                yield version["VersionId"], str(result["SecretString"])


@dataclass(frozen=True)
class RotationContext:
    """What a strategy may know about the rotation in progress."""

    secret_name: str
    """Name of the secret being rotated (safe to log)."""
    token: str
    """ClientRequestToken: the id of the pending version (safe to log)."""
    store: SecretStore
    """Secrets Manager access for this secret (and, via `fetch_secret`, its master secret)."""
    client: Any
    """The injected boto3 Secrets Manager client."""

    def fetch_secret(self, secret_id: str, what: str) -> str:
        """AWSCURRENT value of another secret, e.g. the master credential named by `masterarn`."""
        if not secret_id:
            raise SecretFormatError(f"{what} is empty")
        return SecretStore(self.client, secret_id).required(CURRENT)

    def older_values(self) -> Iterator[tuple[str, str]]:
        """Unlabelled versions: a last resort when a racing rotation left the server on one of them."""
        return self.store.older_values(skip={self.token})

    def previous(self) -> str | None:
        """AWSPREVIOUS, read only when a strategy asks for it (single user, when AWSCURRENT cannot log in; Redis's
        finishSecret, which keeps its password for one more rotation period)."""
        return self.store.value(PREVIOUS, missing_ok=True)


class Strategy(ABC):
    """How one kind of secret is generated, installed, tested and retired.

    Values are SecretStrings. Implementations raise RotationError subclasses, `from exc`,
    with messages that never contain a value.
    """

    name: ClassVar[str]
    installs: ClassVar[bool] = True
    """False when the new value needs installing nowhere (a token, a signing key): setSecret then
    reads nothing."""
    retires: ClassVar[bool] = False
    """True when finish() retires older credentials somewhere (Redis: every password but AWSCURRENT and
    AWSPREVIOUS): finishSecret then reads the current value for it (and AWSPREVIOUS through
    `ctx.previous()` if the strategy asks)."""

    makes_first_value: ClassVar[bool] = False
    """True when the strategy can make a secret's first value with no AWSCURRENT to start from (a
    token, a signing key); a strategy that logs in somewhere needs a first credential to exist."""

    parameters: ClassVar[frozenset[str]] = frozenset()
    """The keys this strategy accepts in its ROTATION_TARGETS entry; any other is refused."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        """`params` is this secret's entry in ROTATION_TARGETS; subclasses validate the values."""
        unknown = set(params) - self.parameters
        if unknown:
            raise ConfigurationError(f"{self.name}: unknown parameters {sorted(unknown)}")
        self.params = params

    @abstractmethod
    def create_pending(self, current: str, ctx: RotationContext) -> str:
        """createSecret: the new value, derived from AWSCURRENT (which it may carry forward)."""

    @property
    def derives_from_current(self) -> bool:
        """Whether a new value is built from AWSCURRENT (connection fields, the previous JWT key); when
        not, createSecret does not read AWSCURRENT and calls `create_first`."""
        return True

    def create_first(self, ctx: RotationContext) -> str:
        """A value made from nothing: the first value of a secret with no AWSCURRENT, or every value
        of a strategy that does not derive from the current one (only if `makes_first_value`)."""
        raise NotImplementedError(self.name)

    @abstractmethod
    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        """setSecret: make the pending credential valid; return early if it already works
        (`ctx.previous()` reads AWSPREVIOUS if the strategy needs it)."""

    @abstractmethod
    def test(self, pending: str, ctx: RotationContext) -> None:
        """testSecret: prove the pending credential works; raise CredentialError if not."""

    def finish(self, current: str, ctx: RotationContext) -> None:  # noqa: B027
        """After AWSCURRENT moved to the new version: retire the previous credential (default: nothing)."""


def _event_field(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise RotationError(f"rotation event lacks {key!r}")
    return value


def rotate(
    event: Mapping[str, Any],
    client: Any,
    strategies: Mapping[str, Strategy],
) -> None:
    """Run one step of the protocol. `strategies` maps each allowed secret NAME to its strategy."""
    if not isinstance(event, Mapping):
        raise RotationError(f"a rotation event is a JSON object, not {type(event).__name__}")
    step = _event_field(event, "Step")
    secret_id = _event_field(event, "SecretId")
    token = _event_field(event, "ClientRequestToken")
    if step not in STEPS:
        raise RotationError(f"unknown rotation step {step!r}; expected one of {list(STEPS)}")

    # Refuse early when the event names the secret (not its ARN) and it is not ours.
    if not secret_id.startswith("arn:") and secret_id not in strategies:
        raise SecretNotAllowedError(
            f"this function does not rotate secret {secret_id!r}; it rotates {sorted(strategies)}"
        )
    if step == "setSecret" and strategies and not any(s.installs for s in strategies.values()):
        # Nothing to install for any secret of this function (a token, a signing key): the step reads and
        # writes nothing, so it needs no DescribeSecret either (one Secrets Manager call fewer per rotation).
        logger.info("setSecret: this function's strategy installs nothing")
        return
    if step in ("setSecret", "testSecret") and _pending_step(step, secret_id, token, client, strategies):
        return
    store = SecretStore(client, secret_id)
    description = store.describe()
    name = str(description.get("Name", ""))
    strategy = strategies.get(name)
    if strategy is None:
        raise SecretNotAllowedError(
            f"this function does not rotate secret {name or secret_id!r}; it rotates {sorted(strategies)}"
        )
    if not description.get("RotationEnabled"):
        raise RotationNotEnabledError(f"rotation is not enabled for secret {name}")
    versions: Mapping[str, list[str]] = description.get("VersionIdsToStages", {})
    if token not in versions:
        raise VersionStageError(f"version {token} of secret {name} does not exist")
    stages = versions[token]
    ctx = RotationContext(secret_name=name, token=token, store=store, client=client)

    if CURRENT in stages:
        if step == "finishSecret" and PENDING in stages:
            # A previous finishSecret moved AWSCURRENT and died before its hook finished.
            logger.info("finishSecret: resuming the finish of version %s of %s", token, name)
            _finish_hook(strategy, ctx)
            return
        logger.info("%s: version %s of %s is already AWSCURRENT; nothing to do", step, token, name)
        return
    if PENDING not in stages:
        raise VersionStageError(f"version {token} of secret {name} is not AWSPENDING (stages {stages})")

    logger.info("%s: secret %s, version %s, strategy %s", step, name, token, strategy.name)
    if step == "createSecret":
        _create(strategy, ctx, has_current=any(CURRENT in s for s in versions.values()))
    elif step == "setSecret":
        if not strategy.installs:
            logger.info("setSecret: the %s strategy installs nothing", strategy.name)
            return
        strategy.set(
            store.required(PENDING, token),
            # "" for a secret's first value (no AWSCURRENT yet): a jwt-rs256 key publishes its public half.
            store.required(CURRENT) if any(CURRENT in s for s in versions.values()) else "",
            ctx,
        )
    elif step == "testSecret":
        strategy.test(store.required(PENDING, token), ctx)
    else:
        # Secrets Manager labels the token's version AWSPENDING when the rotation starts, before
        # createSecret stores a value: a finishSecret out of order (or replayed for a rotation whose
        # createSecret never ran) would move AWSCURRENT onto nothing and empty the secret.
        pending = store.value(PENDING, token, missing_ok=True)
        if pending is None:
            raise VersionStageError(
                f"version {token} of secret {name} has no value yet (createSecret has not run); AWSCURRENT stays"
            )
        current_version = next((v for v, s in versions.items() if CURRENT in s), None)
        store.move_stage(CURRENT, to_version=token, from_version=current_version)
        logger.info("finishSecret: AWSCURRENT moved to version %s of %s", token, name)
        _finish_hook(strategy, ctx, current=pending)


def _pending_step(step: str, secret_id: str, token: str, client: Any, strategies: Mapping[str, Strategy]) -> bool:
    """setSecret or testSecret without DescribeSecret: GetSecretValue of the token's AWSPENDING version
    returns the secret's name and the version's stages, which is all these steps check (createSecret and
    finishSecret, which start and end a rotation, check RotationEnabled). False when that read fails (no
    value, not AWSPENDING): the caller then describes the secret and reports exactly why."""
    try:
        read = client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
    except ClientError:
        return False
    except BotoCoreError as exc:
        raise ExternalServiceError(
            f"Secrets Manager get_secret_value failed for {secret_id}: {type(exc).__name__}"
        ) from exc
    name = str(read.get("Name", ""))
    strategy = strategies.get(name)
    if strategy is None:
        raise SecretNotAllowedError(
            f"this function does not rotate secret {name or secret_id!r}; it rotates {sorted(strategies)}"
        )
    if CURRENT in read.get("VersionStages", []):
        logger.info("%s: version %s of %s is already AWSCURRENT; nothing to do", step, token, name)
        return True
    if "SecretString" not in read:
        raise SecretFormatError(f"secret {name} ({PENDING}) has no SecretString (binary secret?)")
    store = SecretStore(client, secret_id)
    ctx = RotationContext(secret_name=name, token=token, store=store, client=client)
    logger.info("%s: secret %s, version %s, strategy %s", step, name, token, strategy.name)
    if step == "testSecret":
        strategy.test(str(read["SecretString"]), ctx)
    elif not strategy.installs:
        logger.info("setSecret: the %s strategy installs nothing", strategy.name)
    else:
        # "" for a secret's first value (no AWSCURRENT yet): a jwt-rs256 key publishes its public half.
        strategy.set(str(read["SecretString"]), store.value(CURRENT, missing_ok=True) or "", ctx)
    return True


def _create(strategy: Strategy, ctx: RotationContext, *, has_current: bool) -> None:
    # No read of the token's AWSPENDING value first: PutSecretValue itself refuses to change the value of a
    # version that has one ("If a version with this value already exists and the version of the SecretString
    # and SecretBinary values are different from those in the request, then the request fails",
    # ClientRequestToken in the PutSecretValue reference), so a retried createSecret cannot replace a value
    # that setSecret may have installed; the refusal is answered by reusing what is stored (one call fewer
    # per rotation; a retry pays it instead). moto 5.2.5 lets a put replace an AWSPENDING version's value:
    # the tests apply AWS's documented rule (tests/servers.py, `moto_keeps_version_values`).
    if has_current and strategy.derives_from_current:
        value = strategy.create_pending(ctx.store.required(CURRENT), ctx)
    elif strategy.makes_first_value:
        if not has_current:  # a secret created without a value: the function makes the first one
            logger.info("createSecret: secret %s has no AWSCURRENT value; making its first value", ctx.secret_name)
        value = strategy.create_first(ctx)
    else:
        raise SecretFormatError(
            f"secret {ctx.secret_name} has no AWSCURRENT value, and the {strategy.name} strategy needs the "
            "current credential to log in with: store a first value, then rotate"
        )
    try:
        ctx.store.put_pending(ctx.token, value)
    except ExternalServiceError:
        # The refusal's code is not documented for this case (ResourceExistsException in moto): whatever the
        # error, a value already stored under the token is the one to keep; with none, the put's error stands.
        if ctx.store.value(PENDING, ctx.token, missing_ok=True) is None:
            raise
        logger.info("createSecret: reusing the existing AWSPENDING value of version %s", ctx.token)
        return
    logger.info("createSecret: stored a new AWSPENDING value as version %s", ctx.token)


def _finish_hook(strategy: Strategy, ctx: RotationContext, current: str | None = None) -> None:
    """`current`: the value AWSCURRENT was just moved to, when the caller has read it already."""
    if strategy.retires:
        strategy.finish(current if current is not None else ctx.store.required(CURRENT), ctx)
    # Clearing AWSPENDING marks the rotation complete (and lets the next RotateSecret start).
    ctx.store.move_stage(PENDING, to_version=None, from_version=ctx.token)
    logger.info("finishSecret: rotation of %s to version %s complete", ctx.secret_name, ctx.token)


def templates_parameter(strategy: str, params: Mapping[str, Any]) -> dict[str, str] | None:
    """The `templates` parameter of a strategy that changes a credential (the catalog's templates, key ->
    template, rotation/template.py), parsed; a ConfigurationError for a malformed one."""
    try:
        return template.parameter(params.get("templates"))
    except template.TemplateError as exc:
        raise ConfigurationError(f"{strategy}: {exc}") from None


def rebuilt(new: Mapping[str, Any], templates: Mapping[str, str] | None, url: bool,
            build_url: Callable[[Mapping[str, Any]], str]) -> dict[str, Any]:
    """A new credential with every value built from it rendered again: the catalog's templates (an optional part
    written only when its keys have values here, as at deploy), and, where the catalog sent none for it, the
    strategy's own `url` when the secret has one (`url`)."""
    out = template.rebuilt(new, templates or {})
    if url and "url" not in (templates or {}):
        out["url"] = build_url(out)
    return out
