"""Due dates of secrets rotated by hand (`rotation: manual` + `rotate_every_days`).

The last change is AWS's own record: the creation date of the version that holds AWSCURRENT
(ListSecretVersionIds' `CreatedDate`), not a tag someone must remember to update. A new value put
with `pulumi config set --secret` + `pulumi up` (or by hand with PutSecretValue) is a new version,
so it restarts the period; a rollback moves AWSCURRENT to an older version and so brings its older
date back, which is right: the value in use is that old.

A value put out of band (`external: {put: ops}`) is listed too while its secret is still empty ("not put yet",
with the `python -m ops put` command; for a secret whose generated keys the first-value function writes, while
AWSCURRENT is still that function's version); once put, its period (if any) runs from the version `ops put` wrote.

`python -m ops due --stack <stack>` exits 1 when anything is overdue or not put yet
(`.github/workflows/rotation-due.yml` runs it daily).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, TextIO

from components.catalog import Secret
from components.first_value import made_once
from ops.aws import call, describe, pages
from ops.stack import OpsError, Stack
from rotation.first_value import first_token

DEFAULT_WARN_DAYS = 14
"""`due` (rather than `ok`) this many days before the due date."""

Status = Literal["ok", "due", "overdue", "unknown", "not-put"]


@dataclass(frozen=True)
class Due:
    """One hand-rotated secret's period and where it stands."""

    name: str
    every_days: int
    changed: str | None
    """When the AWSCURRENT version was created (ISO 8601, UTC); None if AWS has no current value."""
    due: str | None
    status: Status
    days_left: int | None
    """Whole days until the due date (negative: overdue)."""
    why: str = ""
    put_by_ops: bool = False
    """Its value is put with `python -m ops put` (catalog `external: {put: ops}`), not through Pulumi."""


def current_version_created(client: Any, full: str, current_version: str) -> dt.datetime | None:
    """CreatedDate of `current_version` of secret `full` (ListSecretVersionIds, paginated, at most MAX_PAGES)."""
    for page in pages(f"versions of secret {full}", client.list_secret_version_ids, SecretId=full,
                      IncludeDeprecated=True, MaxResults=100):
        versions = page.get("Versions") or []
        if not isinstance(versions, list):
            raise OpsError(f"secret {full}, field 'Versions': ListSecretVersionIds returned a value of the wrong shape")
        for version in versions:
            if isinstance(version, dict) and version.get("VersionId") == current_version:
                created = version.get("CreatedDate")
                if not isinstance(created, dt.datetime):
                    return None
                try:
                    return created.astimezone(dt.UTC)
                except (OverflowError, ValueError):
                    raise OpsError(f"secret {full}, field 'CreatedDate': not a date AWS could have written") from None
    return None


def current_version(full: str, description: Any) -> str | None:
    """The version holding AWSCURRENT, from DescribeSecret's VersionIdsToStages (checked: version -> labels)."""
    stages = description.get("VersionIdsToStages") if isinstance(description, dict) else None
    if stages is None:
        return None
    if not isinstance(stages, dict) or not all(isinstance(version, str) and isinstance(labels, list)
                                               and all(isinstance(label, str) for label in labels)
                                               for version, labels in stages.items()):
        raise OpsError(f"secret {full}, field 'VersionIdsToStages': DescribeSecret returned a value of the wrong "
                       "shape (a map of version ids to lists of labels)")
    current = [version for version, labels in stages.items() if "AWSCURRENT" in labels]
    if len(current) > 1:
        raise OpsError(f"secret {full}, field 'VersionIdsToStages': AWSCURRENT is on {len(current)} versions")
    return current[0] if current else None


def assess(name: str, every_days: int, changed: dt.datetime | None, now: dt.datetime,
           warn_days: int = DEFAULT_WARN_DAYS, why: str = "") -> Due:
    """Where a secret changed at `changed` stands on day `now` with a period of `every_days`."""
    if changed is None:
        return Due(name, every_days, None, None, "unknown", None, why or "no current value in AWS")
    try:
        due = changed + dt.timedelta(days=every_days)
    except OverflowError:
        raise OpsError(f"secret {name}, field 'CreatedDate': {changed.date()} plus {every_days} days is past year "
                       "9999; not a date AWS could have written") from None
    left = (due - now).total_seconds() / 86400
    status: Status = "overdue" if left < 0 else "due" if left <= warn_days else "ok"
    return Due(name, every_days, changed.isoformat(timespec="seconds"), due.isoformat(timespec="seconds"), status,
               int(left), why)  # whole days, toward zero


def report(stack: Stack, client: Any, warn_days: int = DEFAULT_WARN_DAYS,
           now: dt.datetime | None = None) -> list[Due]:
    """Every secret of the stack with a hand-rotation period, and where it stands (metadata only)."""
    now = now or dt.datetime.now(dt.UTC)
    items: list[Due] = []
    for name, entry in stack.secrets.items():
        if entry.rotate_every_days is None and not entry.put_by_ops:
            continue
        full = stack.full_name(name)
        description = call(f"secret {full}", describe, client=client, name=full)
        if description is None:
            if entry.rotate_every_days is not None:
                items.append(assess(full, entry.rotate_every_days, None, now, warn_days, "missing in AWS"))
            continue  # not deployed yet: `pulumi up` creates it (ops list says so)
        current = current_version(full, description)
        # A secret whose generated keys the first-value function makes: its version (the name's fixed token) holds
        # those keys only, so while it is AWSCURRENT nothing was put (metadata only: no value is read).
        if entry.put_by_ops and (current is None or (made_once(entry) and name not in stack.adopted
                                                     and current == first_token(full))):
            # Created empty by the program (or holding the function's generated keys only), and never put: nothing
            # for consumers, and no period has started.
            commands = "; ".join(put_commands(stack, name, entry))
            items.append(Due(full, entry.rotate_every_days or 0, None, None, "not-put", None,
                             f"not put yet: run {commands}", put_by_ops=True))
            continue
        if entry.rotate_every_days is None:
            continue  # put, and rotated only when it must be: no period to report
        changed = current_version_created(client, full, current) if current else None
        item = assess(full, entry.rotate_every_days, changed, now, warn_days)
        items.append(replace(item, put_by_ops=entry.put_by_ops))
    return items


def put_commands(stack: Stack, name: str, entry: Secret) -> list[str]:
    """`python -m ops put` for each value of a secret put out of band."""
    return [f"python -m ops put --stack {stack.name} {name}{' ' + key if key else ''}" for key, value in
            entry.values.items() if value.external is not None and value.external.put == "ops"]


def render(stack_name: str, items: list[Due], out: TextIO) -> None:
    out.write(f"Secrets of stack '{stack_name}' rotated by hand on a period: {len(items)}\n")
    if not items:
        return
    rows = [("SECRET", "EVERY", "CURRENT SINCE", "DUE", "STATUS")]
    for item in items:
        status = item.status.upper()
        if item.days_left is not None:
            if item.days_left == 0:
                status += " (today)"
            else:
                status += f" ({-item.days_left} days ago)" if item.days_left < 0 else f" (in {item.days_left} days)"
        elif item.why:
            status += f" ({item.why})"
        every = f"{item.every_days}d" if item.every_days else "-"
        rows.append((item.name, every, (item.changed or "-")[:10], (item.due or "-")[:10], status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() + "\n")
    overdue = [i for i in items if i.status == "overdue"]
    if [i for i in overdue if not i.put_by_ops]:
        out.write(f"\n{sum(1 for i in overdue if not i.put_by_ops)} overdue: rotate at the issuer, then `pulumi config "
                  "set --secret ...` and `pulumi up` (README, Day-2 operations)\n")
    if [i for i in overdue if i.put_by_ops]:
        out.write(f"\n{sum(1 for i in overdue if i.put_by_ops)} overdue and put out of band: rotate at the issuer, "
                  "then put the new value with `python -m ops put` (no `pulumi up`)\n")
    waiting = [i for i in items if i.status == "not-put"]
    if waiting:
        out.write(f"\n{len(waiting)} not put yet: consumers have no value until `python -m ops put` writes it\n")


def failed(items: list[Due]) -> bool:
    """Exit 1: something is overdue, or a value put out of band has not been put."""
    return any(i.status in ("overdue", "not-put") for i in items)


def to_json(stack_name: str, items: list[Due]) -> dict[str, Any]:
    return {"stack": stack_name, "secrets": [asdict(i) for i in items],
            "overdue": sum(1 for i in items if i.status == "overdue"),
            "notPut": sum(1 for i in items if i.status == "not-put")}
