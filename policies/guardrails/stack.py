"""Stack-wide rules: relations between resources (rotations, versions, keys, permissions, logs).

Only stack validation sees `property_dependencies` (which resource an input came from), so every
rule that needs to know where a value came from lives here.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from . import engine_config
from . import types as t
from .core import KNOWN_ENVIRONMENTS, Settings, StackFinding, UndecidedError, adopted_secrets, stack_rule, tags_of
from .documents import BadDocument, covers, parse
from .iam import SECRET_ARN
from .secrets import num

APP_WRITE_ACCESS = "app-write"
"""The `access` tag of the policy that lets a service write back a value it renews."""
APP_WRITE_ACTION = "secretsmanager:PutSecretValue"
APPLICATION_RENEWED = "application"
"""The `rotation` tag of a secret whose application writes each renewed value back (an OAuth refresh token)."""
DEFAULT_MAX_ROTATION_DAYS = 90
DEFAULT_MAX_SIGNING_KEY_ROTATION_DAYS = 365
DEFAULT_MAX_MANUAL_ROTATION_DAYS = 365
"""A secret a person rotates (a third-party key, a cloud access key): at least once a year by default."""
MANUAL_PERIOD_TAG = "rotate-every-days"
SECRET_FIELD_NAME = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
PLAIN_SETTING = re.compile(r"^(-?[0-9]{1,6}(\.[0-9]{1,6})?|true|false)$", re.IGNORECASE)
"""A short number or a flag is a setting, not a credential, whatever its field is called (`maxTokens: "1000"`);
a long digit string still counts (a numeric key)."""


def of_type(args: StackValidationArgs, type_: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == type_]


def deps(r: PolicyResource, prop: str) -> list[PolicyResource]:
    return list(r.property_dependencies.get(prop, []))


def refers_to(r: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """Whether input `prop` of `r` comes from `target` (property dependency) or names it literally."""
    if any(d.urn == target.urn for d in deps(r, prop)):
        return True
    value = r.props.get(prop)
    if not isinstance(value, str) or not value:
        return False
    name = target.props.get("name")
    return bool(name) and (value == name or f":secret:{name}" in value or f":function:{name}" in value)


class References:
    """`refers_to(r, prop, target)` for many targets over the same resources: the same answers, in the
    same order, with the same error for a value unknown during preview, but each resource's
    dependencies and value are read once rather than once per target (a stack of 1,000 secrets asked
    this a third of a million times)."""

    def __init__(self, resources: list[PolicyResource], prop: str) -> None:
        self._entries: list[tuple[PolicyResource, set[str], Any, UnknownValueError | None]] = []
        for r in resources:
            try:
                value, error = r.props.get(prop), None
            except UnknownValueError as exc:  # raised when (and only when) refers_to would read it
                value, error = None, exc
            self._entries.append((r, {d.urn for d in deps(r, prop)}, value, error))

    def _refers(self, entry: tuple[PolicyResource, set[str], Any, UnknownValueError | None],
                target: PolicyResource, name: list[Any]) -> bool:
        _, sources, value, error = entry
        if target.urn in sources:
            return True
        if error is not None:
            raise error
        if not isinstance(value, str) or not value:
            return False
        if not name:
            name.append(target.props.get("name"))
        return bool(name[0]) and (value == name[0] or f":secret:{name[0]}" in value
                                  or f":function:{name[0]}" in value)

    def any(self, target: PolicyResource) -> bool:
        """`any(refers_to(r, prop, target) for r in resources)`."""
        name: list[Any] = []
        return any(self._refers(e, target, name) for e in self._entries)

    def referring(self, target: PolicyResource) -> list[PolicyResource]:
        """`[r for r in resources if refers_to(r, prop, target)]`."""
        name: list[Any] = []
        return [e[0] for e in self._entries if self._refers(e, target, name)]


def rotated_secrets(args: StackValidationArgs) -> set[str]:
    """URNs of the secrets some SecretRotation's secretId comes from."""
    return {
        d.urn
        for r in of_type(args, t.SECRET_ROTATION)
        for d in deps(r, "secretId")
        if d.resource_type == t.SECRET
    }


def _days(expression: str) -> float | None:
    m = re.fullmatch(r"rate\((\d+) (day|days|hour|hours)\)", expression.strip())
    if m:
        n = float(m.group(1))
        return n if m.group(2).startswith("day") else n / 24
    m = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if m:
        fields = m.group(1).split()
        # minutes hours day-of-month month day-of-week year: a fixed month means yearly.
        return 365.0 if len(fields) >= 4 and fields[3] not in ("*", "?") and "/" not in fields[3] else 31.0
    return None


def _manual_period(secret: PolicyResource, tags: Mapping[str, Any], settings: Settings) -> Iterator[StackFinding]:
    """A critical secret rotated by hand: its period (tag `rotate-every-days`, catalog `rotate_every_days`)
    is held to `maxManualRotationDays`; with `requireManualPeriod` it must have one."""
    limit = settings.number("maxManualRotationDays", DEFAULT_MAX_MANUAL_ROTATION_DAYS)
    raw = tags.get(MANUAL_PERIOD_TAG)
    if raw is None:
        if settings.get("requireManualPeriod", False) is True:
            yield StackFinding(
                secret.urn, secret.name,
                f"critical secret {secret.name} is rotated by hand with no period; tag it {MANUAL_PERIOD_TAG}=<days> "
                f"(catalog `rotate_every_days`) of at most {num(limit)} days.",
            )
        return
    try:
        days = float(str(raw))
    except ValueError:
        days = 0.0
    if days < 1:
        yield StackFinding(secret.urn, secret.name, f"critical secret {secret.name} has {MANUAL_PERIOD_TAG}="
                           f"{str(raw)[:20]!r}, not a whole number of days; set it to at most {num(limit)}.")
    elif days > limit:
        yield StackFinding(
            secret.urn, secret.name,
            f"critical secret {secret.name} is rotated by hand every {num(days)} days, slower than the "
            f"{num(limit)}-day maximum for hand rotation; rotate it at least every {num(limit)} days.",
        )


SCHEDULE_TAG = "rotation-schedule"
"""A `rate(...)`/`cron(...)` schedule in the characters a tag value may hold (components/catalog/model.py
`Rotation.schedule_tag`): `cron(0 4 ? * SUN *)` is tagged `cron:0 4 _ @ SUN @`."""
_SCHEDULE_TAG = re.compile(r"(rate|cron):([^()]*)")
_FROM_TAG = str.maketrans({"_": "?", "@": "*", ".": ",", "+": "#"})


def tagged_schedule(tags: Mapping[str, Any]) -> str | None:
    """The rotation schedule a secret's tags carry: `rotation=<N>d`, or `rotation=scheduled` with a
    `rotation-schedule` tag; None when they carry none."""
    rotation = str(tags.get("rotation") or "")
    if re.fullmatch(r"[0-9]{1,4}d", rotation):
        return f"rate({int(rotation[:-1])} days)"
    found = _SCHEDULE_TAG.fullmatch(str(tags.get(SCHEDULE_TAG) or ""))
    return f"{found.group(1)}({found.group(2).translate(_FROM_TAG)})" if found and rotation == "scheduled" else None


def _waiting_schedule(secret: PolicyResource, tags: Mapping[str, Any], limit: float) -> Iterator[StackFinding]:
    """A critical secret whose SecretRotation waits for its value (a master not set yet): the catalog's
    schedule, from its tags, is held to the same maximum now, not only once the value comes."""
    expression = tagged_schedule(tags)
    days = _days(expression) if expression else None
    if days is not None and days > limit:
        yield StackFinding(
            secret.urn,
            secret.name,
            f"critical secret {secret.name} is to rotate every {num(days)} days ({expression}, from its tags; its "
            f"SecretRotation waits for the secret's value), slower than the {num(limit)}-day maximum; rotate at "
            f"least every {num(limit)} days.",
        )


def check_rotation(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    rotations = References(of_type(args, t.SECRET_ROTATION), "secretId")
    versions = References(of_type(args, t.SECRET_VERSION), "secretId")
    max_days = settings.number("maxRotationDays", DEFAULT_MAX_ROTATION_DAYS)
    max_signing = settings.number("maxSigningKeyRotationDays", DEFAULT_MAX_SIGNING_KEY_ROTATION_DAYS)
    for secret in of_type(args, t.SECRET):
        tags = tags_of(secret.props)
        if tags.get("class") != "critical" or tags.get("rotation") == APPLICATION_RENEWED:
            continue  # the application renews it itself (secret-version-ignores-rotated-value)
        if tags.get("rotation") in ("on-compromise", "manual"):
            if not str(tags.get("rotation-reason") or "").strip():
                yield StackFinding(
                    secret.urn,
                    secret.name,
                    f"critical secret {secret.name} is tagged rotation={tags.get('rotation')} without a "
                    "rotation-reason tag; add a rotation-reason tag explaining why it cannot be rotated on "
                    "a schedule, or add a SecretRotation.",
                )
            if tags.get("rotation") == "manual":
                yield from _manual_period(secret, tags, settings)
            continue
        limit = max_signing if tags.get("rotation-kind") == "signing-key" else max_days
        mine = rotations.referring(secret)
        if not mine and not versions.any(secret):
            # No value yet, so no SecretRotation (rotation-has-first-value): the schedule the catalog gives,
            # which comes with the value, is judged now from the secret's tags.
            yield from _waiting_schedule(secret, tags, limit)
            continue
        if not mine:
            yield StackFinding(
                secret.urn,
                secret.name,
                f"critical secret {secret.name} has no SecretRotation; add one with secret_id=secret.id "
                f"rotating at least every {num(limit)} days (or tag rotation=on-compromise with a "
                "rotation-reason).",
            )
            continue
        for rot in mine:
            rules = rot.props.get("rotationRules") or {}
            after = rules.get("automaticallyAfterDays")
            expr = rules.get("scheduleExpression")
            days = float(after) if after else (_days(str(expr)) if expr else None)
            if days is None:
                yield StackFinding(
                    rot.urn,
                    rot.name,
                    f"rotation {rot.name} of critical secret {secret.name} has a schedule the policy cannot "
                    f"read ({expr!r}); use automatically_after_days or rate(N days) of at most "
                    f"{num(limit)} days.",
                )
            elif days > limit:
                yield StackFinding(
                    rot.urn,
                    rot.name,
                    f"rotation {rot.name} of critical secret {secret.name} runs every {num(days)} days, "
                    f"slower than the {num(limit)}-day maximum; rotate at least every {num(limit)} days.",
                )


def _config_values() -> set[str]:
    """Values of the stack's config, as the engine passes it to the analyzer (guardrails/engine_config.py)."""
    return {str(v) for v in engine_config.stack_config().values() if v}


def _literal_secret_fields(value: str, config_values: set[str]) -> list[str]:
    """Which parts of a secretString are literals rather than config values."""
    if value in config_values:
        return []
    try:
        doc = json.loads(value)
    except ValueError:
        return ["the whole value"]
    if not isinstance(doc, dict):
        return ["the whole value"]
    return [
        k
        for k, v in doc.items()
        if SECRET_FIELD_NAME.search(k) and isinstance(v, str) and v not in config_values
        and not PLAIN_SETTING.match(v)
    ]


def check_value_source(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    config_values = _config_values()
    rotated = rotated_secrets(args)
    for version in of_type(args, t.SECRET_VERSION):
        for prop in ("secretString", "secretBinary"):
            sources = deps(version, prop)
            if any(d.resource_type.startswith(t.RANDOM_PREFIX) for d in sources):
                continue  # generated: the value itself may be unknown during preview and need not be read
            if prop not in version.props:
                continue
            owner = deps(version, "secretId")
            if prop in version.opts.ignore_changes and any(o.urn in rotated for o in owner):
                continue  # a placeholder that rotation replaces
            value = version.props.get(prop)
            if value is None:
                continue
            literal = _literal_secret_fields(str(value), config_values)
            if literal:
                yield StackFinding(
                    version.urn,
                    version.name,
                    f"secret version {version.name}: {prop} ({', '.join(literal)}) is neither generated (no "
                    "dependency on a random:* resource) nor a stack config value; generate it with "
                    "pulumi_random or read it with config.require_secret.",
                )


def check_version_ignores(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    rotated = rotated_secrets(args)
    for version in of_type(args, t.SECRET_VERSION):
        owner = [d for d in deps(version, "secretId")
                 if d.urn in rotated or tags_of(d.props).get("rotation") == APPLICATION_RENEWED]
        if owner and "secretString" not in version.opts.ignore_changes:
            by = "the application" if owner[0].urn not in rotated else "rotation"
            yield StackFinding(
                version.urn,
                version.name,
                f"secret version {version.name} belongs to secret {owner[0].name}, whose value {by} replaces, but "
                "does not ignore changes to secretString, so the next deploy would overwrite the renewed value; "
                "add ignore_changes=['secretString'].",
            )


def check_rotation_first_value(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    versions = References(of_type(args, t.SECRET_VERSION), "secretId")
    for rot in of_type(args, t.SECRET_ROTATION):
        # rotate_immediately defaults to true: the first rotation then makes or replaces the value.
        if rot.props.get("rotateImmediately") is not False:
            continue
        for secret in (d for d in deps(rot, "secretId") if d.resource_type == t.SECRET):
            if str(secret.props.get("name")) in adopted_secrets(imported=True):
                continue  # an adopted secret holds the value it had before the import
            if not versions.any(secret):
                yield StackFinding(
                    rot.urn,
                    rot.name,
                    f"rotation {rot.name} waits for its schedule, but secret {secret.name} has no SecretVersion: "
                    "when the schedule is set, Secrets Manager tests the rotation function asynchronously (the "
                    "deploy succeeds), the test fails on a secret without a value (TestRotationFailed) and so do "
                    "the scheduled rotations. Give the secret a first value, or set rotate_immediately=True so "
                    "that the rotation function makes it.",
                )


def _granted(pattern: str, secret_name: str) -> bool:
    """Whether an IAM resource pattern names the secret (`...:secret:<name>-??????`, any region)."""
    arn = SECRET_ARN.match(pattern)
    after = arn.group("name") if arn else ""
    if not after or not secret_name:
        return False
    # A secret's ARN ends in `-` and six random characters, written `-??????` or as they are.
    suffixed = re.fullmatch(r"(.+)-[A-Za-z0-9?]{6}", after)
    if suffixed and fnmatch.fnmatchcase(secret_name, suffixed.group(1)):
        return True
    return fnmatch.fnmatchcase(f"{secret_name}-AbCdEf", after)  # a wildcard pattern (`<app>/<env>/*`)


def check_application_writer(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    renewed = [s for s in of_type(args, t.SECRET) if tags_of(s.props).get("rotation") == APPLICATION_RENEWED]
    if not renewed:
        return
    grants: list[str] = []
    for policy in of_type(args, t.IAM_POLICY):
        if tags_of(policy.props).get("access") != APP_WRITE_ACCESS:
            continue
        try:
            _, statements = parse(policy.props.get("policy"))
        except BadDocument:
            continue  # iam-policy-lint reports it
        grants += [r for st in statements if st.effect == "Allow" and covers(st.actions, APP_WRITE_ACTION)
                   for r in st.resources]
    for secret in renewed:
        name = str(secret.props.get("name") or "")
        if not any(_granted(g, name) for g in grants):
            yield StackFinding(
                secret.urn,
                secret.name,
                f"secret {secret.name} is tagged rotation=application, but no policy tagged "
                f"access={APP_WRITE_ACCESS} allows {APP_WRITE_ACTION} on it, so the application cannot store the "
                "value it renews; give its writer service such a policy (catalog `writers`).",
            )


def check_rotation_permission(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    permissions = of_type(args, t.LAMBDA_PERMISSION)
    for rot in of_type(args, t.SECRET_ROTATION):
        functions = [d for d in deps(rot, "rotationLambdaArn") if d.resource_type == t.LAMBDA_FUNCTION]
        if not functions:
            if not deps(rot, "rotationLambdaArn") and rot.props.get("rotationLambdaArn") is None:
                continue  # managed rotation (no Lambda)
            yield StackFinding(
                rot.urn,
                rot.name,
                f"rotation {rot.name} uses a Lambda that is not in this stack; create the rotation function "
                "here so its invoke permission can be checked.",
            )
            continue
        for fn in functions:
            ok = [
                p
                for p in permissions
                if refers_to(p, "function", fn) and p.props.get("principal") == "secretsmanager.amazonaws.com"
            ]
            if not ok:
                yield StackFinding(
                    rot.urn,
                    rot.name,
                    f"rotation {rot.name} invokes Lambda {fn.name}, which has no aws.lambda_.Permission for "
                    "principal secretsmanager.amazonaws.com; add one (action lambda:InvokeFunction).",
                )


def check_environment_key(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    aliases = of_type(args, t.KMS_ALIAS)
    for secret in of_type(args, t.SECRET):
        env = settings.env_for(tags_of(secret.props))
        sources = deps(secret, "kmsKeyId")
        stack_keys = [d for d in sources if d.resource_type == t.KMS_KEY]
        stack_keys += [k for a in sources if a.resource_type == t.KMS_ALIAS for k in deps(a, "targetKeyId")]
        if not stack_keys:
            value = secret.props.get("kmsKeyId")
            if value and any(value == a.props.get("name") for a in aliases):
                continue
            if value and value == recovery_key():
                continue  # a recovery stack's secrets stay under the primary's replica key (recoveryOf)
            yield StackFinding(
                secret.urn,
                secret.name,
                f"secret {secret.name} is not encrypted with a KMS key created in this stack (kmsKeyId "
                f"{value!r}); set kms_key_id to this environment's key ARN.",
            )
            continue
        for key in stack_keys:
            key_env = tags_of(key.props).get("environment")
            if env and key_env and key_env != env:
                yield StackFinding(
                    secret.urn,
                    secret.name,
                    f"{env} secret {secret.name} is encrypted with key {key.name} of environment "
                    f"{key_env}; use the {env} key.",
                )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k in value:
            yield from _strings(value[k])
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _tagged_environment(args: StackValidationArgs) -> str | None:
    """The one `environment` tag every tagged resource of the stack carries (the program tags each
    with the environment from the stack's config), or None when there is none or several."""
    found: set[str] = set()
    for r in args.resources:
        try:
            tag = tags_of(r.props).get("environment")
        except UnknownValueError:
            continue
        if tag:
            found.add(str(tag))
    return found.pop() if len(found) == 1 else None


def check_cross_environment(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    # Configured, else the stack's name, else what the program tagged (a third environment such as
    # `dev` needs no policy config to be known).
    env = settings.environment or _tagged_environment(args)
    if env is None:
        raise UndecidedError(detail="this stack's environment is not configured, not in the stack name and not "
                             "one `environment` tag shared by its resources")
    others = [e for e in KNOWN_ENVIRONMENTS if e != env]
    pattern = re.compile(
        r"(?:^|[/:])[A-Za-z0-9_+=.@-]+/(" + "|".join(map(re.escape, others)) + r")/"
        r"|alias/[A-Za-z0-9_-]*-(" + "|".join(map(re.escape, others)) + r")\b"
    )
    undecided: UndecidedError | None = None
    for r in args.resources:
        hits: list[str] = []
        for prop in r.props:
            if prop in ("secretString", "secretBinary"):
                continue  # secret values are not references (and are not scanned)
            try:
                value = r.props[prop]
                if prop == "policy" and r.resource_type in t.POLICY_DOCUMENT_TYPES:
                    try:
                        _, statements = parse(value)
                    except BadDocument:
                        statements = []
                    # Deny statements may name other environments (a CI deny on production, say).
                    for s in statements:
                        if s.effect != "Deny":
                            hits += [x for x in s.resources + s.not_resources if pattern.search(x)]
                    continue
                hits += [x for x in _strings(value) if pattern.search(x)]
            except UnknownValueError as exc:
                undecided = exc if isinstance(exc, UndecidedError) else UndecidedError(exc)
        if hits:
            yield StackFinding(
                r.urn,
                r.name,
                f"{env} resource {r.name} references another environment: "
                f"{', '.join(sorted(set(hits))[:3])}; reference only {env} resources.",
            )
    if undecided is not None:
        # Nothing found among the known values, but some values are unknown: say so.
        raise undecided


def _log_group_names(fn: PolicyResource) -> set[str]:
    name = fn.props.get("name")
    return {f"/aws/lambda/{name}"} if name else set()


def check_function_logs(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    groups = of_type(args, t.LOG_GROUP)
    for fn in of_type(args, t.LAMBDA_FUNCTION):
        logging = fn.props.get("loggingConfig") or {}
        linked = [d for d in deps(fn, "loggingConfig") if d.resource_type == t.LOG_GROUP]
        explicit = logging.get("logGroup") if isinstance(logging, Mapping) else None
        names = _log_group_names(fn) | ({str(explicit)} if explicit else set())
        linked += [g for g in groups if any(d.urn == fn.urn for d in deps(g, "name"))]
        linked += [g for g in groups if g.props.get("name") in names]
        if not linked:
            yield StackFinding(
                fn.urn,
                fn.name,
                f"Lambda function {fn.name} has no log group in this stack, so Lambda creates one that "
                "keeps logs forever; create aws.cloudwatch.LogGroup '/aws/lambda/<function name>' with "
                "retention_in_days.",
            )
        elif not any(g.props.get("retentionInDays") for g in linked):
            yield StackFinding(
                fn.urn,
                fn.name,
                f"Lambda function {fn.name} logs to a log group without retentionInDays; set "
                "retention_in_days.",
            )


MISSING_VALUES_TAG = "missing-values"
"""Tag of the environment's KMS key when the stack file sets `allowMissingValues` (components/environment.py)."""


def check_requires_values(args: StackValidationArgs, settings: Settings) -> Iterator[StackFinding]:
    for r in args.resources:
        try:
            tags = tags_of(r.props)
        except UnknownValueError:
            continue
        if tags.get(MISSING_VALUES_TAG) and settings.env_for(tags) == "production":
            yield StackFinding(
                r.urn,
                r.name,
                f"production resource {r.name} is tagged {MISSING_VALUES_TAG}={tags.get(MISSING_VALUES_TAG)}: the "
                "stack sets secrets-platform:allowMissingValues, so `pulumi up` would create a secret whose required "
                "value is not set without a value instead of stopping; remove allowMissingValues from the "
                "production stack file.",
            )


POLICIES = [
    stack_rule(
        "secret-rotation-required",
        "Critical secrets have a rotation no slower than the configured maximum.",
        EnforcementLevel.MANDATORY,
        check_rotation,
        {
            "maxRotationDays": {"type": "number", "minimum": 1, "default": DEFAULT_MAX_ROTATION_DAYS},
            "maxSigningKeyRotationDays": {
                "type": "number",
                "minimum": 1,
                "default": DEFAULT_MAX_SIGNING_KEY_ROTATION_DAYS,
            },
            "maxManualRotationDays": {"type": "number", "minimum": 1, "default": DEFAULT_MAX_MANUAL_ROTATION_DAYS},
            "requireManualPeriod": {"type": "boolean", "default": False},
        },
    ),
    stack_rule(
        "secret-value-source",
        "Secret values come from generation (random:*), secret config or rotation, never a literal in "
        "the program.",
        EnforcementLevel.MANDATORY,
        check_value_source,
    ),
    stack_rule(
        "secret-version-ignores-rotated-value",
        "Versions of secrets that rotation or the application renews ignore changes to secretString.",
        EnforcementLevel.MANDATORY,
        check_version_ignores,
    ),
    stack_rule(
        "rotation-has-first-value",
        "A rotation that waits for its schedule belongs to a secret with a value.",
        EnforcementLevel.MANDATORY,
        check_rotation_first_value,
    ),
    stack_rule(
        "application-renewed-writer",
        "A secret the application renews (rotation=application) has an access=app-write policy allowing "
        "PutSecretValue on it.",
        EnforcementLevel.MANDATORY,
        check_application_writer,
    ),
    stack_rule(
        "rotation-lambda-invoke-permission",
        "Every rotation's Lambda has an invoke permission for Secrets Manager.",
        EnforcementLevel.MANDATORY,
        check_rotation_permission,
    ),
    stack_rule(
        "secret-uses-environment-key",
        "Every secret is encrypted with its own environment's KMS key created in this stack.",
        EnforcementLevel.MANDATORY,
        check_environment_key,
    ),
    stack_rule(
        "no-cross-environment-references",
        "No resource references another environment's secrets, keys or names (Deny statements excepted).",
        EnforcementLevel.MANDATORY,
        check_cross_environment,
    ),
    stack_rule(
        "stack-requires-values",
        "A production stack does not set allowMissingValues (secrets without their required values).",
        EnforcementLevel.MANDATORY,
        check_requires_values,
    ),
    stack_rule(
        "lambda-log-retention",
        "Every Lambda function logs to a log group in this stack with a retention period.",
        EnforcementLevel.MANDATORY,
        check_function_logs,
    ),
]


def recovery_key() -> str | None:
    """The key a recovery stack's secrets stay under (`secrets-platform:recoveryOf.kmsKeyArn` of the stack config,
    guardrails/engine_config.py): the primary stack's replica key in that region, which the recovery stack uses and
    does not create (components/recovery.py)."""
    entry = engine_config.structured("recoveryOf")
    key = entry.get("kmsKeyArn") if isinstance(entry, dict) else None
    return key if isinstance(key, str) and key.startswith("arn:aws:kms:") else None
