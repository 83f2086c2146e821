"""`ops rotate --leaked`: replace a leaked value so that it no longer works anywhere.

One RotateSecret is not enough for every strategy. Where the previous credential deliberately stays valid until
the next rotation (zero downtime: PostgreSQL alternating users, JWT keys kept in the verification set, Redis ACL
keeping the previous password), the leaked value (today's AWSCURRENT) still works after one rotation, as
AWSPREVIOUS; only a second one retires it. RotateSecret is asynchronous and refused while a rotation is in
progress, so the second starts only once the first is complete: AWSCURRENT on its version and AWSPENDING cleared.

A generated value no function rotates (made once inside AWS by the first-value function) is replaced by that
same function, on an explicit `Replace` request the program never sends: the value stays inside AWS.

Only metadata is read (DescribeSecret) and the function's answer holds no value: nothing here can print one.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from components import names
from components.catalog import ManagedExternal, Rotation, Secret
from components.first_value import groups, made_once, put_keys
from ops.aws import call, client_config, describe
from ops.secrets import (
    CURRENT,
    PENDING,
    PREVIOUS,
    SECRET_ARGUMENT,
    _existing,
    clear_pending_command,
    confirm_production,
    replacement,
    stages_of,
)
from ops.stack import OpsError, Stack
from rotation.first_value import refused_replace

PREVIOUS_STAYS_VALID = {
    "postgres-alternating-users": "the other user's password changes, the leaked user keeps working",
    "jwt-hs256": "the previous key stays in the verification set",
    "jwt-rs256": "the previous key stays in the published key set",
    "redis-acl": "the previous password stays on the ACL user",
}
"""Strategies whose previous credential stays valid until the next rotation (zero downtime): rotated twice."""
WAIT_SECONDS = 300.0
"""How long to wait for each rotation to complete (a rotation function runs its four steps in seconds)."""
MAX_WAIT_SECONDS = 3600.0
"""The longest `--wait`: the wait is bounded whatever is asked (Lambda stops a function after 900 s)."""
POLL_SECONDS = 3.0
"""Between two DescribeSecret calls while a rotation runs."""
INVOKE_READ_TIMEOUT = 60.0
"""Seconds to wait for the first-value function's answer (its own timeout is 30 s: components/first_value.py)."""
MAX_ANSWER = 65_536
"""Bytes of the function's answer read at most (it is a few dozen)."""


@dataclass
class Outcome:
    """What `--leaked` did, for the caller's restart and report."""

    full: str
    leaked: str
    versions: list[str] = field(default_factory=list)
    """The versions it made, in order; the last is AWSCURRENT."""
    retired_at: dt.datetime | None = None
    """When the leaked version was seen leaving AWSCURRENT: a consumer started since holds a value that works."""


def rotations_needed(entry: Secret) -> int:
    """2 where the previous credential stays valid until the next rotation, else 1."""
    if isinstance(entry.rotation, Rotation) and entry.rotation.strategy in PREVIOUS_STAYS_VALID:
        return 2
    return 1


def _why(entry: Secret) -> str:
    if isinstance(entry.rotation, Rotation):
        strategy = entry.rotation.strategy
        if strategy in PREVIOUS_STAYS_VALID:
            return f"{strategy}: {PREVIOUS_STAYS_VALID[strategy]} until the next rotation, so it is rotated twice"
        return f"{strategy}: one rotation retires the leaked value"
    if isinstance(entry.rotation, ManagedExternal):
        return f"rotated by Secrets Manager itself ({entry.rotation.managed_external}): one rotation"
    return "made once inside AWS: the first-value function replaces it"


def _wait(stack: Stack, client: Any, name: str, full: str, version: str, step: str, leaked: str, *,
          timeout: float, last: bool) -> tuple[dict[str, str | None], float]:
    """Poll DescribeSecret until `version` is AWSCURRENT and AWSPENDING is cleared; the stages and the wait.

    A successful rotation may also leave AWSPENDING on the AWSCURRENT version (RotateSecret's documentation).
    That ends the last rotation; before another one it is waited out, since this project's functions clear
    AWSPENDING just after moving AWSCURRENT (rotation/protocol.py finishSecret), and a RotateSecret sent between
    the two would make that clearing fail."""
    started = time.monotonic()
    seen = False  # AWSPENDING seen on our version: from then on, its absence means the rotation ended
    rerun = f"then run `python -m ops rotate --leaked {name} --stack {stack.name}` again"
    while True:
        description = call(f"secret {full}", describe, client=client, name=full)
        if description is None:
            raise OpsError(f"secret {full} disappeared during {step}; the leaked value may still work")
        stages = stages_of(description)
        current, pending = stages[CURRENT], stages[PENDING]
        waited = time.monotonic() - started
        still = ("is still AWSCURRENT" if current == leaked else
                 "is still AWSPREVIOUS and still works" if stages[PREVIOUS] == leaked else "may still work")
        if current == version and (pending is None or (last and pending == version)):
            return stages, waited
        seen = seen or pending == version
        if seen and current != version and pending != version:
            # Nothing runs for our version any more, and it never became current: abandoned or cleared.
            raise OpsError(f"secret {full}: {step} (version {version}) ended without becoming AWSCURRENT "
                           f"(AWSCURRENT {current}, AWSPENDING {pending or 'none'}); the leaked version {leaked} "
                           f"{still}; see the rotation function's logs, {rerun}")
        if pending is not None and pending != version:
            raise OpsError(f"secret {full}: another rotation started during {step} (AWSPENDING on {pending}); the "
                           f"leaked version {leaked} {still}; wait for it to finish, {rerun}")
        if waited >= timeout:
            raise OpsError(f"secret {full}: {step} (version {version}) did not complete within {timeout:g}s "
                           f"(AWSCURRENT {current}, AWSPENDING {pending}): it failed or is still running, and no "
                           f"further rotation was started; the leaked version {leaked} {still}; see the rotation "
                           f"function's logs; if no rotation is running, {clear_pending_command(stack, name)}, "
                           f"{rerun}")
        time.sleep(max(0.0, min(POLL_SECONDS, timeout - waited)))


def check_name(given: str) -> None:
    """Refuse what cannot be a secret name before anything names it (never echoed whole: it may be huge)."""
    if not SECRET_ARGUMENT.fullmatch(given):
        raise OpsError(f"'{given[:64].encode('unicode_escape').decode()}' is not a secret name (1-512 of "
                       "A-Z a-z 0-9 / _ + = . @ -); refusing")


def rotate_leaked(stack: Stack, client: Any, given: str, out: TextIO, err: TextIO, *, yes: bool,
                  confirm: Callable[[str], str | None], timeout: float = WAIT_SECONDS,
                  endpoint_url: str | None = None, restarting: bool = True) -> Outcome:
    """Rotate (or, for a value made once, replace) until the leaked AWSCURRENT version no longer works."""
    check_name(given)
    if not 0 < timeout <= MAX_WAIT_SECONDS:  # NaN fails both comparisons
        raise OpsError(f"--wait must be more than 0 and at most {MAX_WAIT_SECONDS:g} seconds (got {timeout:g})")
    name, entry = stack.resolve(given)
    full = stack.full_name(name)
    description = _existing(client, full)
    stages = stages_of(description)
    leaked = stages[CURRENT]
    if leaked is None:
        raise OpsError(f"secret {full} has no AWSCURRENT version: no value, so none leaked; nothing changed")
    if made_once(entry) and name not in stack.adopted and put_keys(entry):
        # The function cannot read the keys `ops put` wrote: its replace would drop them (it refuses too).
        raise OpsError(refused_replace(full, list(put_keys(entry))))
    if made_once(entry) and name not in stack.adopted:
        confirm_production(stack, full, f"replace the value of {full} (version {leaked}) with a new one made inside "
                           "AWS", f"replacing the leaked value of {full}", err, yes=yes, confirm=confirm)
        return _replace_made_once(stack, client, name, full, leaked, out,
                                  lambda: _lambda_client(stack, endpoint_url), restarting)
    if not description.get("RotationEnabled") or not (description.get("RotationLambdaARN")
                                                      or isinstance(entry.rotation, ManagedExternal)):
        if isinstance(entry.rotation, Rotation | ManagedExternal):
            hint = f"the catalog rotates it, so the rotation is not deployed yet: run `pulumi up --stack {stack.name}`"
        else:
            hint = f"the catalog says '{entry.rotation_tag}': {replacement(stack, name, entry)}"
        raise OpsError(f"secret {full} has no rotation configured in AWS; nothing changed ({hint})")
    if stages[PENDING] is not None and stages[PENDING] != leaked:  # on AWSCURRENT it blocks nothing
        raise OpsError(f"secret {full}: a rotation is in progress or failed (AWSPENDING on version {stages[PENDING]}); "
                       f"nothing changed; wait for it, or if no rotation is running, "
                       f"{clear_pending_command(stack, name)}")
    count = rotations_needed(entry)
    confirm_production(stack, full, f"rotate {full} {'twice' if count == 2 else 'once'} to retire version {leaked}",
                       f"replacing the leaked value of {full}", err, yes=yes, confirm=confirm)
    outcome = Outcome(full=full, leaked=leaked)
    out.write(f"leaked value of {full}: version {leaked} ({_why(entry)})\n")
    for i in range(1, count + 1):
        step = f"rotation {i} of {count}"
        response = call(f"secret {full}", client.rotate_secret, SecretId=full)
        version = response.get("VersionId") if isinstance(response, dict) else None
        if not isinstance(version, str) or not version:
            raise OpsError(f"secret {full}: RotateSecret returned no VersionId during {step}; see `python -m ops "
                           f"list --stack {stack.name}`")
        stages, waited = _wait(stack, client, name, full, version, step, leaked, timeout=timeout,
                               last=i == count)
        outcome.versions.append(version)
        outcome.retired_at = outcome.retired_at or dt.datetime.now(dt.UTC)
        out.write(f"  {step}: version {version} is AWSCURRENT after {waited:.1f}s; AWSPREVIOUS is "
                  f"{stages[PREVIOUS]}\n")
    final = stages_of(call(f"secret {full}", client.describe_secret, SecretId=full))
    labels = [label for label, version in final.items() if version == leaked]
    if labels:
        out.write(f"  the leaked version {leaked} is now {', '.join(labels)}: kept for a rollback, which would "
                  "bring it back; do not roll back\n")
    else:
        out.write(f"  the leaked version {leaked} holds no staging label any more\n")
    _warn(out, restarting)
    return outcome


def _warn(out: TextIO, restarting: bool) -> None:
    out.write("warning: anything still holding the leaked value now fails: consumers that cache it read the new "
              "value at their next refresh; " + (
                  "those that read it only at start are restarted below\n" if restarting else
                  "those that read it only at start keep it until you restart them (--no-restart)\n"))


def function_of(stack: Stack, name: str) -> str:
    """The first-value function that made `name`: the same grouping as the program (components/environment.py)."""
    made = [n for n, e in stack.secrets.items() if made_once(e) and n not in stack.adopted]
    group = next(g for g, members in groups(made).items() if name in members)
    return names.rotation_function(stack.catalog.app, stack.environment, group)


def _lambda_client(stack: Stack, endpoint_url: str | None) -> Any:
    import os

    import boto3
    from botocore.config import Config

    # Not retried by the client: a retry would replace the value a second time. The read outlasts the
    # function's own timeout.
    config = client_config().merge(Config(read_timeout=INVOKE_READ_TIMEOUT,
                                          retries={"max_attempts": 0, "mode": "standard"}))
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client("lambda", region_name=stack.region, endpoint_url=endpoint, config=config)


def _replace_made_once(stack: Stack, client: Any, name: str, full: str, leaked: str, out: TextIO,
                       lambda_client: Callable[[], Any], restarting: bool) -> Outcome:
    function = function_of(stack, name)
    event = json.dumps({"FirstValue": full, "Replace": True}).encode()
    what = f"first-value function {function}"
    response = call(what, lambda_client().invoke, FunctionName=function, InvocationType="RequestResponse",
                    Payload=event)
    payload = response.get("Payload")
    raw = payload.read(MAX_ANSWER) if payload is not None else b""
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        answer = None
    after = stages_of(call(f"secret {full}", client.describe_secret, SecretId=full))
    if response.get("FunctionError"):
        # Lambda answers 200 with FunctionError set when the handler raised; the payload names its error type.
        kind = answer.get("errorType") if isinstance(answer, dict) else None
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
        detail = " ".join(str(message or "").split())[:200]
        raise OpsError(f"secret {full}: the {what} failed ({response['FunctionError']}: {kind or 'no error type'}"
                       f"{': ' + detail if detail else ''}); AWSCURRENT is {after[CURRENT]}"
                       f"{' (still the leaked version)' if after[CURRENT] == leaked else ''}; see its logs")
    version = answer.get("version") if isinstance(answer, dict) else None
    if not isinstance(version, str) or after[CURRENT] != version or after[CURRENT] == leaked:
        raise OpsError(f"secret {full}: the {what} answered but AWSCURRENT is {after[CURRENT]}"
                       f"{' (still the leaked version)' if after[CURRENT] == leaked else ''}; see its logs")
    out.write(f"leaked value of {full}: version {leaked} (made once inside AWS: the first-value function "
              "replaces it)\n")
    out.write(f"  replaced by {function}: version {version} is AWSCURRENT; the leaked version {leaked} is "
              f"{'AWSPREVIOUS' if after[PREVIOUS] == leaked else 'without a label'} (a rollback would bring it "
              "back; do not roll back)\n")
    _warn(out, restarting)
    return Outcome(full=full, leaked=leaked, versions=[version], retired_at=dt.datetime.now(dt.UTC))
