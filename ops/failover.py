"""`python -m ops failover --stack <s> --region <replica region>`: promote a stack's replicas in one region.

When the stack's region is down, its secrets still live as replicas in each of `replicaRegions`. A replica is
read-only until it is promoted: StopReplicationToReplica, called in the replica's own region, turns it into a
standalone secret there, with the same name, value and versions, under the replica's KMS key (Secrets Manager
user guide, "Promote a replica secret to a standalone secret"; API reference, StopReplicationToReplica). This
command does it for every replicated secret of the stack and only ever calls the replica's region, so it works
while the primary region does not answer:

1. lists the stack's secrets in that region (one paginated ListSecrets, filtered by the stack's name prefix);
2. promotes each replica (production asks for confirmation; `--dry-run` changes nothing);
3. checks each promoted secret: no longer a replica, encrypted under a key of that region, still tagged with
   the stack's app and environment, and whether it has a resource policy;
4. writes the config of a recovery stack in that region that adopts the promoted secrets through the existing
   adoption path (`secrets-platform:adopt`), and prints the ARNs consumers must change (only the region in
   each ARN changes).

Rotation does not run in the promoted region until the recovery stack deploys a function there
(components/recovery.py: `secrets-platform:recoveryOf`). Failing back replicates the current values to the
primary region and runs this command on the recovery stack towards it (docs/failover.md, "Failback").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from ops.aws import call, make_client, pages
from ops.inputs import write_new
from ops.stack import OpsError, Stack


@dataclass
class Promotion:
    """One secret of the stack in the failover region."""

    name: str
    """The catalog name."""
    full_name: str
    arn: str | None = None
    old_arn: str | None = None
    """The ARN consumers use today (the primary region's)."""
    status: str = "missing"
    """`promoted`, `would promote`, `already standalone`, `missing` (not replicated there)."""
    kms_key_id: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _listed(stack: Stack, client: Any) -> dict[str, dict[str, Any]]:
    """The stack's secrets as the failover region lists them, by name (paged and capped as every `ops` listing)."""
    found: dict[str, dict[str, Any]] = {}
    for page in pages("list the stack's secrets in the failover region", client.list_secrets,
                      Filters=[{"Key": "name", "Values": [stack.prefix]}], MaxResults=100):
        for entry in page.get("SecretList", []):
            if isinstance(entry, dict) and isinstance(entry.get("Name"), str):
                found[entry["Name"]] = entry
    return found


def _tags(entry: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in entry.get("Tags") or [] if isinstance(t, dict)}


def failover(stack: Stack, region: str, client: Any, *, dry_run: bool) -> list[Promotion]:
    if region == stack.region:
        raise OpsError(f"--region {region} is the stack's own region: fail over to one of its replica regions")
    listed = _listed(stack, client)
    results: list[Promotion] = []
    for name in stack.secrets:
        full = stack.full_name(name)
        promotion = Promotion(name=name, full_name=full)
        results.append(promotion)
        entry = listed.get(full)
        if entry is None:
            continue
        promotion.arn = str(entry.get("ARN"))
        promotion.old_arn = promotion.arn.replace(f":{region}:", f":{stack.region}:", 1)
        if entry.get("PrimaryRegion") in (None, region):
            promotion.status = "already standalone"
        elif dry_run:
            promotion.status = "would promote"
            continue
        else:
            call(f"promote {full} in {region}", client.stop_replication_to_replica, SecretId=promotion.arn)
            promotion.status = "promoted"
        described = call(f"describe {full} in {region}", client.describe_secret, SecretId=promotion.arn)
        _check(stack, region, described, promotion)
    return results


def _check(stack: Stack, region: str, described: dict[str, Any], promotion: Promotion) -> None:
    """What a recovery stack needs of the promoted secret before it adopts it."""
    if described.get("PrimaryRegion") not in (None, region):
        promotion.problems.append(f"still a replica of {described['PrimaryRegion']}")
    key = described.get("KmsKeyId")
    promotion.kms_key_id = str(key) if key else None
    if key and str(key).startswith("arn:") and f":kms:{region}:" not in str(key):
        promotion.problems.append(f"encrypted under a key of another region ({key})")
    promotion.description = described.get("Description")
    promotion.tags = _tags(described)
    for tag, wanted in (("app", stack.catalog.app), ("environment", stack.environment)):
        if promotion.tags.get(tag) != wanted:
            promotion.problems.append(f"tag {tag} is {promotion.tags.get(tag)!r}, not {wanted!r}")


def recovery_config(stack: Stack, region: str, account_id: str | None, source: dict[str, Any],
                    promotions: list[Promotion]) -> dict[str, Any]:
    """The stack file of a recovery stack in `region`: the original's config, moved to that region, adopting
    every promoted secret as it now is (the import step of README "Adopt an existing application")."""
    config = dict(source.get("config") or {})
    project = stack.project
    # A `secure:` value is encrypted for the stack it was set on (each stack has its own key or salt): the
    # recovery stack could not decrypt it, and the CLI decrypts every value before the program starts.
    for key in [k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"}]:
        del config[key]
    config["aws:region"] = region
    config[f"{project}:environment"] = stack.environment
    # The old primary region is down: nothing replicates there until failback.
    config.pop(f"{project}:replicaRegions", None)
    # Subnets and security groups are per region: the rotation functions need this region's.
    for key in ("rotationSubnetIds", "rotationSecurityGroupIds"):
        config.pop(f"{project}:{key}", None)
    # An RDS-managed master secret is RDS's, in the database's region: the database that serves this region
    # (a promoted read replica) has its own, which the recovery stack names by hand.
    config.pop(f"{project}:managedMasters", None)
    adopt: dict[str, Any] = {}
    for p in promotions:
        if p.status not in ("promoted", "already standalone") or p.arn is None or p.problems:
            continue
        entry: dict[str, Any] = {"arn": p.arn, "name": p.full_name}
        if p.description:
            entry["description"] = p.description
        if p.kms_key_id:
            entry["kmsKeyId"] = p.kms_key_id
        if p.tags:
            entry["tags"] = {k: v for k, v in sorted(p.tags.items())}
        adopt[p.name] = entry
    config[f"{project}:adopt"] = adopt
    # The key the promoted secrets stay under: the primary stack's replica key here, used as it is
    # (components/recovery.py); a key given by ARN is the only form a key policy and the program accept.
    keys = sorted({p.kms_key_id for p in promotions if p.arn and p.kms_key_id and not p.problems
                   and p.kms_key_id.startswith(f"arn:aws:kms:{region}:")})
    if len(keys) == 1:
        config[f"{project}:recoveryOf"] = {"stack": stack.name, "region": stack.region, "kmsKeyArn": keys[0]}
    if account_id:
        config[f"{project}:accountId"] = account_id
    return {"config": config}


def render(stack: Stack, region: str, promotions: list[Promotion], written: Path | None, dry_run: bool,
           seconds: float, calls: int, out: TextIO) -> None:
    done = sum(p.status == "promoted" for p in promotions)
    out.write(f"Failover of stack '{stack.name}' to {region}{' (dry run: nothing changed)' if dry_run else ''}: "
              f"{done} promoted, {sum(p.status == 'would promote' for p in promotions)} to promote, "
              f"{sum(p.status == 'missing' for p in promotions)} not replicated there; "
              f"{calls} calls in {seconds:.1f} s\n")
    for p in promotions:
        line = f"  {p.status:18} {p.full_name}"
        if p.problems:
            line += f"  ({'; '.join(p.problems)})"
        out.write(line + "\n")
    missing = [p.full_name for p in promotions if p.status == "missing"]
    if missing:
        out.write(f"\nNot replicated to {region} (their consumers have no value there): {', '.join(missing)}\n")
    moved = [p for p in promotions if p.arn and p.old_arn and p.status != "would promote"]
    if moved:
        out.write("\nConsumers change each ARN's region (task definitions, `valueFrom`, environment):\n")
        for p in moved:
            out.write(f"  {p.old_arn}\n    -> {p.arn}\n")
    if written is not None:
        out.write(f"\nRecovery stack config: {written}\n"
                  f"  set its rotationSubnetIds/rotationSecurityGroupIds for {region}, then `pulumi stack init "
                  f"{written.name.removeprefix('Pulumi.').removesuffix('.yaml')}` and `pulumi up` with it: the "
                  "secrets are adopted as they are under the primary stack's replica key (recoveryOf), and the "
                  "follow-up step (`imported: true`) brings rotation back in this region; encrypted config values "
                  "are not copied (set again with `pulumi config set --secret` those the recovery stack still needs). "
                  f"Stack '{stack.name}' refuses to run while this file is in the project: docs/failover.md\n")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "failover", help="promote the stack's replicas in one region and write a recovery stack that adopts them")
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config-file", default=None, help="a stack config file other than Pulumi.<stack>.yaml")
    parser.add_argument("--region", required=True, help="the replica region to promote in")
    parser.add_argument("--dry-run", action="store_true", help="change nothing: say what would happen")
    parser.add_argument("--yes", action="store_true", help="confirm a production failover without asking")
    parser.add_argument("--out", default=None,
                        help="folder for the recovery stack file Pulumi.<stack>-<region>.yaml (default: none written)")
    parser.add_argument("--endpoint-url", default=None, help=argparse.SUPPRESS)


def client(region: str, endpoint_url: str | None) -> Any:
    """A Secrets Manager client in the failover region, bounded like every `ops` client."""
    return make_client(region, endpoint_url)


def main(args: argparse.Namespace, stack: Stack, source: dict[str, Any], account_id: str | None, out: TextIO,
         confirm: Callable[[str], str | None]) -> int:
    from components.regions import known_regions

    region = args.region
    if region not in known_regions():
        raise OpsError(f"--region: {region[:40]!r} is not a region of the aws partition where Secrets Manager runs")
    if stack.is_production and not args.dry_run and not args.yes:
        answer = confirm(f"Promote every replica of stack '{stack.name}' in {region}? They stop following "
                         f"{stack.region}. Type the stack name to confirm: ")
        if answer is None:
            raise OpsError("a production failover needs --yes (no terminal to confirm on)")
        if answer.strip() != stack.name:
            raise OpsError("not confirmed: nothing changed")
    written: Path | None = None
    if args.out and not args.dry_run:
        # Checked before anything is promoted: an existing file is never overwritten, and nothing half-done.
        written = Path(args.out) / f"Pulumi.{stack.name}-{region}.yaml"
        if written.exists() or written.is_symlink():
            raise OpsError(f"{written} exists: choose another --out; nothing was promoted")
    sm = client(region, args.endpoint_url)
    calls = [0]
    sm.meta.events.register("before-call.secrets-manager.*", lambda **_: calls.__setitem__(0, calls[0] + 1))
    started = time.monotonic()
    promotions = failover(stack, region, sm, dry_run=args.dry_run)
    seconds = time.monotonic() - started
    if written is not None:
        written.parent.mkdir(parents=True, exist_ok=True)
        recovery = recovery_config(stack, region, account_id, source, promotions)
        text = yaml.safe_dump(recovery, sort_keys=False)
        write_new(written, f"# Recovery stack of '{stack.name}' in {region}, written by `python -m ops failover`.\n"
                  + text, force=False)
    render(stack, region, promotions, written, args.dry_run, seconds, calls[0], out)
    if written is not None and f"{stack.project}:recoveryOf" not in recovery["config"]:
        keys = sorted({p.kms_key_id or "aws/secretsmanager" for p in promotions if p.arn and not p.problems})
        out.write(f"\nNo recoveryOf written: the promoted secrets are not under one key of {region} "
                  f"({', '.join(keys)}); the recovery stack runs on one key, the primary stack's replica key there\n")
    problems = [p for p in promotions if p.problems]
    return 1 if problems else 0
