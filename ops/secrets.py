"""`list`, `rotate` and `rollback`: the state of a stack's secrets in Secrets Manager.

Only metadata is read (DescribeSecret, ListSecrets); no command calls GetSecretValue, so no value
can reach the output.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from components import names
from components.catalog import Rotation, Secret
from components.first_value import made_once, put_keys
from components.public_key import published_by
from ops.aws import NOT_FOUND, call, describe, error_code
from ops.aws import pages as listing
from ops.due import Due, assess, current_version_created
from ops.stack import OpsError, Stack, rotation_days

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
CREDENTIAL_STRATEGIES = frozenset({"postgres-single-user", "postgres-alternating-users", "redis-acl"})
KEPT_PREVIOUS = frozenset({"postgres-alternating-users", "redis-acl"})
"""Credentials whose previous password works until the next rotation (rotation/README.md): a rollback may make it
current again once it is seen to log in."""
SOON_AFTER_ROLLBACK = dt.timedelta(minutes=30)
"""A restarted consumer leaves the rolled-away value within 1,500 s (docs/consumers.md); a rotation sooner than
this retires it first."""
"""Strategies whose value is also a credential inside a server: a rollback must be accepted there too."""


@dataclass
class SecretState:
    """One secret of the stack as Secrets Manager describes it (never its value)."""

    name: str
    """The full name, `<app>/<env>/<name>`."""
    catalog: str | None
    """The catalog name, or None for a secret under the stack's prefix that the catalog does not declare."""
    exists: bool
    catalog_rotation: str = "-"
    """The catalog's intent: `90d`, `on-compromise`, `manual`."""
    stages: dict[str, str | None] = field(default_factory=dict)
    """AWSCURRENT / AWSPENDING / AWSPREVIOUS -> version id."""
    versions: int = 0
    last_rotated: str | None = None
    last_changed: str | None = None
    rotation_enabled: bool = False
    rotation_lambda: str | None = None
    next_rotation: str | None = None
    next_rotation_source: str | None = None
    """`aws` (DescribeSecret NextRotationDate) or `computed` (last rotation + AutomaticallyAfterDays)."""
    deleted: str | None = None
    due: Due | None = None
    """A secret rotated by hand on a period (`rotate_every_days`): its due date (ops/due.py)."""
    problems: list[str] = field(default_factory=list)


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    return None


def stages_of(description: dict[str, Any]) -> dict[str, str | None]:
    """The version id holding each AWS staging label."""
    found: dict[str, str | None] = {CURRENT: None, PENDING: None, PREVIOUS: None}
    for version, labels in (description.get("VersionIdsToStages") or {}).items():
        for label in labels if isinstance(labels, list) else ():  # an answer of another shape: no label
            if isinstance(label, str) and label in found:
                found[label] = version
    return found


def _next_rotation(description: dict[str, Any]) -> tuple[str | None, str | None]:
    if description.get("NextRotationDate"):
        return _iso(description["NextRotationDate"]), "aws"
    if not description.get("RotationEnabled"):
        return None, None
    rules = description.get("RotationRules") or {}
    days = rules.get("AutomaticallyAfterDays")
    base = description.get("LastRotatedDate") or description.get("CreatedDate")
    if days and isinstance(base, dt.datetime):
        return _iso(base + dt.timedelta(days=int(days))), "computed"
    if rules.get("ScheduleExpression"):
        return f"per {rules['ScheduleExpression']}", "computed"
    return None, None


def state_of(stack: Stack, client: Any, catalog_name: str | None, full: str,
             now: dt.datetime | None = None) -> SecretState:
    description = call(f"secret {full}", describe, client=client, name=full)
    secrets = stack.secrets
    entry = secrets.get(catalog_name) if catalog_name else None
    signer = published_by(secrets).get(catalog_name or "")
    # A published public key changes with its signing key's rotation, not by hand.
    intent = f"with {signer}" if signer else entry.rotation_tag if entry else "-"
    state = SecretState(name=full, catalog=catalog_name, exists=description is not None, catalog_rotation=intent)
    if description is None:
        state.problems.append("missing in AWS (run `pulumi up`)")
        return state
    state.stages = stages_of(description)
    state.versions = len(description.get("VersionIdsToStages") or {})
    state.last_rotated = _iso(description.get("LastRotatedDate"))
    state.last_changed = _iso(description.get("LastChangedDate"))
    state.rotation_enabled = bool(description.get("RotationEnabled"))
    state.rotation_lambda = description.get("RotationLambdaARN") or None
    state.next_rotation, state.next_rotation_source = _next_rotation(description)
    state.deleted = _iso(description.get("DeletedDate"))
    if state.deleted:
        state.problems.append(f"scheduled for deletion on {state.deleted}")
    if entry is None:
        state.problems.append("not in the catalog")
    else:
        days = rotation_days(entry)
        if isinstance(entry.rotation, Rotation) and not state.rotation_enabled:
            state.problems.append(f"catalog rotates it ({entry.rotation_tag}) but rotation is off in AWS")
        aws_days = (description.get("RotationRules") or {}).get("AutomaticallyAfterDays")
        if days and state.rotation_enabled and aws_days and int(aws_days) != days:
            state.problems.append(f"AWS rotates every {aws_days}d, the catalog says {days}d")
    if state.stages.get(PENDING) and state.stages[PENDING] != state.stages.get(CURRENT):
        # A secret outside the catalog is not one `ops` changes: the plain AWS command instead.
        clear = clear_pending_command(stack, catalog_name) if catalog_name else (
            f"remove the label with `aws secretsmanager update-secret-version-stage --secret-id {full} "
            f"--version-stage AWSPENDING --remove-from-version-id {state.stages[PENDING]}`")
        state.problems.append("a rotation is in progress or failed (AWSPENDING on its own version): RotateSecret, and "
                              "so every `pulumi up` that changes its rotation, is refused until it is cleared; if no "
                              f"rotation is running, {clear}")
    if state.stages.get(CURRENT) is None:
        if entry is not None and isinstance(entry.rotation, Rotation) and entry.rotation.first_value_by_rotation:
            # `first_value: rotation`: `pulumi up` created it empty and started the rotation that fills it.
            state.problems.append("no value yet: the first rotation makes it; if that failed, see the rotation "
                                  "function's logs and the rotation alerts")
        else:
            state.problems.append("no AWSCURRENT version (no value yet)")
    if entry is not None and entry.needs_first_install:
        state.problems.extend(_first_install(entry, state))
    if entry is not None and entry.rotate_every_days is not None:
        current = state.stages.get(CURRENT)
        changed = current_version_created(client, full, current) if current else None
        state.due = assess(full, entry.rotate_every_days, changed, now or dt.datetime.now(dt.UTC))
        if state.due.status in ("due", "overdue"):
            state.problems.append(f"rotation by hand {state.due.status}: every {entry.rotate_every_days} days, the "
                                  f"current version is from {_date(state.due.changed)}, due {_date(state.due.due)}")
    return state


def _first_install(entry: Any, state: SecretState) -> list[str]:
    """A generated server credential not yet on its server: no rotation has completed (the program's first
    value is AWSCURRENT, with no AWSPREVIOUS), or it has no value yet because its master has none."""
    master = entry.rotation.master
    if master is not None and not isinstance(master, str):
        master = "the RDS-managed master"  # `master: {managed: rds}`: AWS keeps it, it always has a value
    if state.stages.get(CURRENT) is None:
        return [f"first install outstanding: waits for the value of {master}, which installs it"] if master else []
    if state.stages.get(PREVIOUS) is not None:
        return []
    if master is None:
        return ["first install outstanding: nothing installs the generated password on its server (no "
                "rotation.master); name an admin credential in the catalog and run `pulumi up`, or set it on the "
                "server by hand"]
    return [f"first install outstanding: the first rotation, started by `pulumi up`, has not completed, so the "
            f"password is not on its server yet ({master} installs it); see the rotation function's logs and the "
            "rotation alerts, then `python -m ops rotate`"]


def list_states(stack: Stack, client: Any, now: dt.datetime | None = None) -> list[SecretState]:
    """Every catalog secret of the stack, then any other secret under the stack's prefix."""
    states = [state_of(stack, client, name, stack.full_name(name), now) for name in stack.secrets]
    declared = {s.name for s in states}
    # Each page bounded (ops/aws.py `pages`): an endpoint that never ends the listing is stopped.
    pages = list(listing(f"secrets under {stack.prefix}", client.list_secrets, MaxResults=100,
                         Filters=[{"Key": "name", "Values": [stack.prefix]}], IncludePlannedDeletion=True))
    extra = sorted({s["Name"] for page in pages for s in page.get("SecretList", [])
                    if s["Name"].startswith(stack.prefix) and s["Name"] not in declared})
    states.extend(state_of(stack, client, None, name) for name in extra)
    return states


def _short(version: str | None) -> str:
    return version[:8] if version else "-"


def _date(value: str | None) -> str:
    return value[:10] if value else "-"


def render_list(stack: Stack, states: list[SecretState], out: TextIO) -> None:
    missing = sum(1 for s in states if not s.exists)
    out.write(f"Secrets of stack '{stack.name}' ({stack.prefix}*, region {stack.region}): "
              f"{sum(1 for s in states if s.catalog)} in the catalog, {missing} missing in AWS\n")
    header = ("SECRET", "CURRENT", "PREVIOUS", "PENDING", "LAST ROTATED", "LAST CHANGED", "ROTATION", "NEXT ROTATION")
    rows = [header]
    for s in states:
        if not s.exists:
            rows.append((s.name, "MISSING", "-", "-", "-", "-", s.catalog_rotation, "-"))
            continue
        if s.rotation_enabled:
            rotation = f"on ({s.catalog_rotation})"
        elif s.catalog_rotation.endswith("d") or s.catalog_rotation == "scheduled":
            rotation = f"OFF ({s.catalog_rotation})"  # the catalog rotates it; listed under Attention
        else:
            rotation = s.catalog_rotation
        if s.due is not None:  # rotated by hand: its period, and the due date in NEXT ROTATION
            rotation = f"{s.catalog_rotation}/{s.due.every_days}d {s.due.status.upper()}"
            s.next_rotation = s.due.due
        nxt = s.next_rotation if s.next_rotation and s.next_rotation.startswith("per ") else _date(s.next_rotation)
        rows.append((s.name, _short(s.stages.get(CURRENT)), _short(s.stages.get(PREVIOUS)),
                     _short(s.stages.get(PENDING)), _date(s.last_rotated), _date(s.last_changed), rotation, nxt))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    problems = [(s.name, p) for s in states for p in s.problems]
    if problems:
        out.write("\nAttention:\n")
        for name, problem in problems:
            out.write(f"  - {name}: {problem}\n")


def list_json(stack: Stack, states: list[SecretState]) -> dict[str, Any]:
    return {
        "stack": stack.name,
        "environment": stack.environment,
        "region": stack.region,
        "secrets": [asdict(s) for s in states],
        "summary": {"catalog": sum(1 for s in states if s.catalog),
                    "missing": sum(1 for s in states if not s.exists),
                    "notInCatalog": sum(1 for s in states if s.exists and not s.catalog)},
    }


def _existing(client: Any, full: str) -> dict[str, Any]:
    description = call(f"secret {full}", describe, client=client, name=full)
    if description is None:
        raise OpsError(f"secret {full} does not exist in AWS (deploy the stack with `pulumi up` first)")
    if description.get("DeletedDate"):
        raise OpsError(f"secret {full} is scheduled for deletion; restore it first")
    return description


def replacement(stack: Stack, name: str, entry: Secret) -> str:
    """How a person replaces a value no function rotates: a supplied value is set again; a generated
    one is made again by replacing the random resource behind it (its URN, as the engine names it)."""
    generated = [(key, value.generate.kind) for key, value in entry.values.items() if value.generate is not None]
    put = put_keys(entry)
    supplied = [key for key, value in entry.values.items() if value.external is not None and key not in put]
    steps = []
    if supplied:
        steps.append("set the new value with `pulumi config set --secret` and run `pulumi up`")
    if put:
        steps.append(f"put the new value with `python -m ops put --stack {stack.name} {name}"
                     f"{' <key>' if entry.grouped else ''}` ({', '.join(k or 'value' for k in put)})")
    if generated and name in stack.adopted:
        # The program makes no value for an adopted secret (components/environment.py): nothing here replaces it.
        steps.append(f"it was adopted with its value, which the stack never makes: put a new one yourself "
                     f"(`aws secretsmanager put-secret-value --secret-id {stack.full_name(name)}`)")
    elif generated and made_once(entry) and put:
        # The first-value function cannot read the put keys, so it refuses to replace (rotation/first_value.py).
        steps.append("the first-value function made the generated keys and cannot replace them beside the put ones: "
                     f"write a new version holding every key (`aws secretsmanager put-secret-value --secret-id "
                     f"{stack.full_name(name)}`)")
    elif generated and made_once(entry):
        steps.append("it was made once inside AWS by the first-value function, which replaces it only when asked: "
                     f"`python -m ops rotate --leaked {name} --stack {stack.name}` (docs/no-value-in-state.md)")
    elif generated:
        # --replace, not --target-replace (which also restricts the update to the named resource, Pulumi's
        # "Targeted updates" guide): the secret's version must take the new value in the same update.
        urns = [names.generated_value_urn(stack.name, stack.project, stack.catalog.app, stack.environment, name,
                                          key, kind) for key, kind in generated]
        targets = " ".join(f"--replace '{urn}'" for urn in urns)
        steps.append(f"make a new generated value with `pulumi up --stack {stack.name} {targets}`")
    return "; ".join(steps) or "change it where it comes from and run `pulumi up`"


def rotate(stack: Stack, client: Any, given: str, out: TextIO) -> None:
    """RotateSecret now, for a secret whose rotation function is configured in AWS."""
    name, entry = stack.resolve(given)
    full = stack.full_name(name)
    description = _existing(client, full)
    if not description.get("RotationEnabled") or not description.get("RotationLambdaARN"):
        if isinstance(entry.rotation, Rotation):
            hint = f"the catalog rotates it, so the rotation is not deployed yet: run `pulumi up --stack {stack.name}`"
        else:
            hint = f"the catalog says '{entry.rotation_tag}': {replacement(stack, name, entry)}"
        raise OpsError(f"secret {full} has no rotation configured in AWS; refusing to rotate ({hint})")
    stages = stages_of(description)
    if stages[PENDING] and stages[PENDING] != stages[CURRENT]:
        raise OpsError(f"secret {full}: a previous rotation is still in progress or failed (AWSPENDING on "
                       f"version {stages[PENDING]}); check the rotation function's logs; if no rotation is running, "
                       f"{clear_pending_command(stack, name)}")
    response = call(f"secret {full}", client.rotate_secret, SecretId=full)
    version = response.get("VersionId")
    after = stages_of(call(f"secret {full}", client.describe_secret, SecretId=full))
    out.write(f"rotation of {full} started: new version {version}\n")
    if version and after[CURRENT] == version:
        out.write(f"  AWSCURRENT is now {version}; AWSPREVIOUS is {after[PREVIOUS]}\n")
    else:
        out.write(f"  AWSCURRENT is still {after[CURRENT]} while the rotation function runs; "
                  f"follow it with `python -m ops list --stack {stack.name}`\n")


def rollback(stack: Stack, client: Any, given: str, out: TextIO, err: TextIO, *, yes: bool,
             confirm: Callable[[str], str | None], force: bool = False) -> None:
    """Move AWSCURRENT back to the AWSPREVIOUS version (the old value becomes current again)."""
    name, entry = stack.resolve(given)
    full = stack.full_name(name)
    credential = isinstance(entry.rotation, Rotation) and entry.rotation.strategy in CREDENTIAL_STRATEGIES
    verified = False
    if credential and not force:
        assert isinstance(entry.rotation, Rotation)
        strategy = entry.rotation.strategy
        if strategy not in KEPT_PREVIOUS:
            # Single user: the rotation changed the password in place (ALTER ROLE), so the previous one is gone.
            raise OpsError(f"secret {full} is a {strategy} credential whose previous password the rotation has "
                           "retired on its server; rotate it again instead, or pass --force if you have restored "
                           "the old password on the server yourself")
        # Alternating users and Redis keep the previous password until the next rotation, unless that rotation ran
        # under an older function, or the server was reset: only a login tells.
        reason = _previous_login(client, full, strategy)
        if reason is not None:
            raise OpsError(f"secret {full}: the previous {strategy} password does not log in ({reason}); rotate it "
                           "again instead, or pass --force if you have restored it on the server yourself")
        verified = True
    if entry.rotation == "application" and not force:
        # The application renews it (an OAuth refresh token is single use): the previous value was
        # already spent when the application wrote the current one.
        raise OpsError(f"secret {full} is renewed by the application itself, which has already used the previous "
                       "value; renew it through the application instead, or pass --force if the previous value "
                       "is still valid")
    description = _existing(client, full)
    stages = stages_of(description)
    current, previous = stages[CURRENT], stages[PREVIOUS]
    if current is None:
        raise OpsError(f"secret {full} has no AWSCURRENT version; nothing to roll back")
    if previous is None or previous == current:
        raise OpsError(f"secret {full} has no AWSPREVIOUS version to roll back to; refusing")
    confirm_production(stack, full, f"roll {full} back from version {current} to {previous}", f"rolling back {full}",
                       err, yes=yes, confirm=confirm)
    call(f"secret {full}", client.update_secret_version_stage, SecretId=full, VersionStage=CURRENT,
         MoveToVersionId=previous, RemoveFromVersionId=current)
    out.write(f"rolled back {full}: AWSCURRENT {current} -> {previous}; {current} is now AWSPREVIOUS\n")
    if verified:
        out.write("  note: the restored password logged in just now; the next rotation keeps it and retires the one "
                  f"rolled away from (version {current}): consumers must have left it by then\n")
        next_rotation = description.get("NextRotationDate")
        if isinstance(next_rotation, dt.datetime) and next_rotation - dt.datetime.now(dt.UTC) < SOON_AFTER_ROLLBACK:
            out.write(f"  warning: the next scheduled rotation is at {next_rotation:%Y-%m-%d %H:%M} UTC, less than "
                      f"{SOON_AFTER_ROLLBACK.seconds // 60} minutes away\n")
    elif credential:
        out.write("  note: forced; the server must accept the restored password again\n")
    if stages[PENDING] and stages[PENDING] != current:
        out.write(f"  note: AWSPENDING is still on version {stages[PENDING]} from an unfinished rotation\n")
    out.write("  consumers that cache the value pick the old one up at their next refresh\n")


def confirm_production(stack: Stack, full: str, plan: str, doing: str, err: TextIO, *, yes: bool,
                       confirm: Callable[[str], str | None]) -> None:
    """Production: the typed secret name or --yes, before anything changes; elsewhere nothing."""
    if not stack.is_production or yes:
        return
    err.write(f"Stack '{stack.name}' is production: {plan}.\n")
    typed = confirm(f"Type the secret name ({full}) to confirm: ")
    if typed is None:
        raise OpsError(f"{doing} in production needs --yes, or a typed confirmation on an interactive terminal "
                       "(none here); refusing")
    if typed.strip() != full:
        raise OpsError(f"confirmation did not match {full}; nothing changed")


def _previous_login(client: Any, full: str, strategy: str) -> str | None:
    """None if AWSPREVIOUS logs in to its server, else why not (never a value)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ops.connection import login
    from rotation.errors import RotationError

    try:
        value = client.get_secret_value(SecretId=full, VersionStage=PREVIOUS)
    except ClientError as exc:
        return "no AWSPREVIOUS version" if error_code(exc) == NOT_FOUND else f"reading it failed: {error_code(exc)}"
    except BotoCoreError as exc:
        return f"reading it failed: {type(exc).__name__}"
    text = value.get("SecretString")
    if not isinstance(text, str):
        return "AWSPREVIOUS holds no JSON text"
    try:
        return login(strategy, text, f"{full} (AWSPREVIOUS)")
    except RotationError as exc:  # the strategy's parse refusal: names the key, never the value
        return str(exc)
    except RecursionError:  # thousands of nested brackets
        return "AWSPREVIOUS is not a JSON object"


SECRET_ARGUMENT = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
"""A catalog or full secret name as CreateSecret accepts it (botocore NameType: at most 512)."""


def clear_pending_command(stack: Stack, name: str) -> str:
    """The command that removes a stale AWSPENDING (named wherever the state is reported)."""
    return f"clear it with `python -m ops clear-pending {name} --stack {stack.name}`"


def clear_pending(stack: Stack, client: Any, given: str, out: TextIO, err: TextIO, *, yes: bool,
                  confirm: Callable[[str], str | None]) -> None:
    """Remove AWSPENDING from a version that is not AWSCURRENT: a rotation that failed or was abandoned.

    RotateSecret refuses while AWSPENDING sits on a version other than AWSCURRENT ("assumes that a previous
    rotation request is still in progress", botocore's RotateSecret documentation), and the provider sends
    RotateSecret when it creates a SecretRotation and on every update of its function or rules, so that label
    blocks every later rotation change.
    Only the label is removed (UpdateSecretVersionStage with RemoveFromVersionId); the version keeps its
    other labels, and one left with none is deprecated, which AWS may delete.
    """
    if not SECRET_ARGUMENT.fullmatch(given):
        # Never echoed whole: it may be huge or hold control characters.
        raise OpsError(f"'{given[:64].encode('unicode_escape').decode()}' is not a secret name (1-512 of "
                       "A-Z a-z 0-9 / _ + = . @ -); refusing")
    name, _ = stack.resolve(given)
    full = stack.full_name(name)
    description = _existing(client, full)
    stages = stages_of(description)
    pending, current = stages[PENDING], stages[CURRENT]
    if pending is None:
        raise OpsError(f"secret {full} has no AWSPENDING version; nothing to clear")
    if pending == current:
        raise OpsError(f"secret {full}: AWSPENDING is on the current version {current}, where a finished rotation "
                       "leaves it (RotateSecret is not blocked); refusing to clear it")
    labels = sorted((description.get("VersionIdsToStages") or {}).get(pending) or [])
    others = [label for label in labels if label != PENDING]
    plan = (f"remove AWSPENDING from version {pending} of {full} (its labels: {', '.join(labels)}); AWSCURRENT stays "
            f"on {current or 'no version'}; " + (f"the version keeps {', '.join(others)}" if others else
                                               "the version is left without a label, and AWS may delete it"))
    err.write(f"Will {plan}.\n  A rotation that is running now (see its function's logs) would fail: wait for it "
              "instead.\n")
    if stack.is_production and not yes:
        typed = confirm(f"Stack '{stack.name}' is production. Type the secret name ({full}) to confirm: ")
        if typed is None:
            raise OpsError(f"clearing AWSPENDING of {full} in production needs --yes, or a typed confirmation on an "
                           "interactive terminal (none here); refusing")
        if typed.strip() != full:
            raise OpsError(f"confirmation did not match {full}; nothing changed")
    call(f"secret {full}", client.update_secret_version_stage, SecretId=full, VersionStage=PENDING,
         RemoveFromVersionId=pending)
    after = stages_of(call(f"secret {full}", client.describe_secret, SecretId=full))
    out.write(f"cleared AWSPENDING from version {pending} of {full}; AWSCURRENT is {after[CURRENT]}\n")
    out.write(f"  the next rotation (or `pulumi up`) may call RotateSecret again: `python -m ops rotate {name} "
              f"--stack {stack.name}`\n")
