"""One catalog entry as AWS resources: the secret, its generated parts and its value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import grants, iam, names
from components.adopt import Adoption
from components.catalog import PLACEHOLDER_REF, BytesSpec, ManagedExternal, PasswordSpec, Rotation, Secret, UuidSpec
from components.values import SuppliedValues
from rotation import template as templates


@dataclass(frozen=True)
class CatalogSecretArgs:
    """Inputs of one catalog secret in one environment."""

    app: str
    """Application name: the first segment of the secret name."""
    environment: str
    """Environment name: the second segment of the secret name."""
    name: str
    """The catalog name: the last segment of the secret name."""
    entry: Secret
    """The catalog entry (shape, class, rotation, values)."""
    owner: str
    """Owning team (tag)."""
    kms_key_arn: pulumi.Input[str]
    """The environment's customer-managed key in the stack's region."""
    account_id: str
    """The account: the secret's resource policy denies every principal outside it."""
    supplied: SuppliedValues
    """External (secret) and plain config values read from the stack's config."""
    recovery_window_days: int
    """Days a deleted secret stays recoverable."""
    protect: bool = False
    """Protect from `pulumi destroy` and keep in AWS if removed from the program."""
    replica_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Replica region -> key ARN in that region."""
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    """Stack-wide tags."""
    extra_values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Keys the platform adds to a JSON secret (`masterarn` for a rotation's admin secret)."""
    held: bool = False
    """No value yet although this secret's own values are complete: a generated server credential whose
    master (which installs it) has no value in this stack; the value comes with the master's."""
    published_by: str | None = None
    """The signing secret whose rotation writes this one (a published public key): no program value."""
    adopted: Adoption | None = None
    """An existing secret to import as it is (no version, no resource policy), instead of creating one."""
    shared_roles: tuple[str, ...] = ()
    """Role ARNs of other accounts that may read this secret (catalog `shared_with`): its resource policy
    names exactly them."""
    made_once: bool = False
    """A generated value no function rotates, made inside AWS by the first-value function at deploy
    (components/first_value.py): the program writes no version and generates nothing."""


PLATFORM_TAGS = frozenset({
    "app", "environment", "class", "owner", "rotation", "managed-by", "rotation-strategy", "rotation-kind",
    "first-value", "rotation-reason", "rotate-every-days", "public-key-of",
})
"""Tag names the platform sets on a secret (policies and `ops` read them): an adopted secret's own tag by one
of these names is replaced at the follow-up step, every other tag of its own is kept."""


def base64url(standard: str) -> str:
    """Unpadded base64url (RFC 4648 section 5) of a standard base64 text."""
    return standard.replace("+", "-").replace("/", "_").rstrip("=")


def _generated(
    name: str, spec: BytesSpec | PasswordSpec | UuidSpec, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """A generated value as a secret Output, made by pulumi-random."""
    if isinstance(spec, BytesSpec):
        raw = random.RandomBytes(name, length=spec.bytes, opts=opts)
        if spec.encoding == "hex":
            return raw.hex
        if spec.encoding == "base64url":
            # random_bytes has no URL-safe form; derive it (the result stays a secret Output).
            return raw.base64.apply(base64url)
        return raw.base64
    if isinstance(spec, PasswordSpec):
        chars = spec.characters
        letters = set(chars)
        # random_password draws from the union of its enabled sets; the project's alphabet is given
        # entirely as override_special so that exactly these characters are used.
        password = random.RandomPassword(
            name, length=spec.length, lower=False, upper=False, numeric=False, special=True,
            override_special="".join(sorted(letters)), opts=opts,
        )
        return password.result
    # RandomUuid does not mark its result secret: without additional_secret_outputs the engine keeps it
    # in plain text in the state, whatever the program does with its own copy.
    uuid = random.RandomUuid(name, opts=pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=["result"])))
    return pulumi.Output.secret(uuid.result)


def render_template(template: str, parts: Mapping[str, str | int | bool]) -> str:
    """Substitute sibling values into a template, percent-encoding each so that none breaks a URL; an optional
    part (`[...]`) whose key this stack leaves unset is left out. The rotation function renders with the same
    code (rotation/template.py)."""
    return templates.render(template, parts)


class CatalogSecret(pulumi.ComponentResource):
    """A Secrets Manager secret named `<app>/<env>/<name>`, encrypted with the environment's key."""

    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion | None
    arn: pulumi.Output[str]
    secret_name: str
    first_value_by_rotation: bool
    """The rotation function makes the first value; the program declares no version."""
    keys: tuple[str, ...]
    """The keys consumers can bind to: the JSON keys of a grouped secret, `""` for a single value; an
    optional value this stack does not set is left out (a single one leaves none: the secret exists but
    feeds nothing)."""

    def __init__(self, name: str, args: CatalogSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(names.CATALOG_COMPONENT_TYPE, name, None, opts)
        entry = args.entry
        # The rotation function makes the first value (RotateImmediately): the program writes none, so
        # the value never enters Pulumi state.
        self.first_value_by_rotation = (isinstance(entry.rotation, Rotation) and entry.rotation.first_value_by_rotation
                                        ) or args.published_by is not None or args.made_once
        self.version = None
        if args.adopted is not None and not args.adopted.imported:
            self._adopt(name, args, args.adopted)
            return
        # An adopted secret after its import keeps its name (a rename replaces the secret) and its value.
        keeps_value = args.adopted is not None
        self.secret_name = args.adopted.name if args.adopted else f"{args.app}/{args.environment}/{args.name}"
        tags = {
            **args.extra_tags,
            "app": args.app,
            "environment": args.environment,
            "class": entry.class_,
            "owner": args.owner,
            "rotation": entry.rotation_tag,
            "managed-by": "pulumi",
        }
        if isinstance(entry.rotation, Rotation):
            tags["rotation-strategy"] = entry.rotation.strategy
            if entry.rotation.schedule_tag is not None:  # the pack judges it while the SecretRotation waits
                tags["rotation-schedule"] = entry.rotation.schedule_tag
            if entry.rotation.signing_key:
                tags["rotation-kind"] = "signing-key"  # the policy pack allows signing keys a slower schedule
            if entry.rotation.first_value_by_rotation:
                tags["first-value"] = "rotation"  # empty until the first rotation: `ops list` says so
        if entry.rotation_reason:
            tags["rotation-reason"] = entry.rotation_reason
        if entry.rotate_every_days is not None:
            tags["rotate-every-days"] = str(entry.rotate_every_days)  # the pack's maximum; `ops due`
        if args.published_by is not None:
            tags["public-key-of"] = args.published_by  # written by that secret's rotation (components/public_key.py)
            tags["first-value"] = "rotation"
        if args.made_once:
            tags["first-value"] = "function"  # empty until the first-value function runs at deploy
        if args.adopted is not None:
            # Tags absent from the declaration are removed (the provider's update untags them): keep the team's.
            tags = {**args.adopted.team_tags(PLATFORM_TAGS), **tags}
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=self.secret_name,
            description=entry.description,
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            replicas=_replicas(args),
            tags=tags,
            # A managed external secret carries its partner's Type (set at creation only).
            type=entry.rotation.secret_type if isinstance(entry.rotation, ManagedExternal) else None,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.arn = self.secret.arn

        child = pulumi.ResourceOptions(parent=self)
        parts: dict[str, pulumi.Output[str]] = {}
        plain: dict[str, str | int | bool] = dict(args.supplied.plain)
        missing_keys = {gap.key for gap in args.supplied.missing}
        missing_required = args.held or any(gap.required for gap in args.supplied.missing)
        # A server credential's password (and what is built from it) is made and installed by its first
        # rotation, inside AWS: the program writes only the other parts, and generates nothing.
        in_aws = made_by_rotation(entry)
        for key, value in entry.values.items():
            if missing_required or self.first_value_by_rotation or keeps_value:
                break  # no version from the program: generate nothing that would only sit unused in state
            if key in in_aws:
                continue
            if value.generate is not None:
                parts[key] = _generated(f"{name}-{key or 'value'}", value.generate, child)
            elif key in args.supplied.secret:
                parts[key] = args.supplied.secret[key]
        if not missing_required:
            parts.update({k: pulumi.Output.from_input(v) for k, v in args.extra_values.items()})
        optional_missing = {gap.key for gap in args.supplied.missing if not gap.required}
        # A template whose required part this stack leaves unset is left out too (an optional part, `[...]`, is
        # left out of the rendered value instead).
        optional_missing |= {k for k, v in entry.values.items() if v.template is not None
                             and set(templates.parse(v.template).required) & optional_missing}
        present = [k for k in entry.values if k not in missing_keys | optional_missing | in_aws]
        # A required value not set yet still belongs to the secret.
        self.keys = tuple(k for k in entry.values if k not in optional_missing)

        if not missing_required and present and not self.first_value_by_rotation and not keeps_value:
            # Output.all() of nothing is a list, not a mapping: a secret of plain values has no parts.
            combined = pulumi.Output.all(**parts) if parts else pulumi.Output.from_input({})
            composed: pulumi.Output[str] = combined.apply(
                lambda resolved: self._compose(entry, present, resolved, plain)
            )
            # Everything stored in Secrets Manager is treated as secret, even a group of plain values.
            secret_string: pulumi.Output[str] = pulumi.Output.secret(composed)
            self.version = aws.secretsmanager.SecretVersion(
                f"{name}-value",
                secret_id=self.secret.id,
                secret_string=secret_string,
                # A label of the program's own keeps this version in AWS for the secret's life. Without it,
                # rotations leave the version unlabelled, Secrets Manager deletes it once the secret has more
                # than 100 versions, a refresh drops it from the state, and the next `pulumi up` writes the
                # first value again as AWSCURRENT over the rotated one.
                version_stages=["AWSCURRENT", names.PROGRAM_VALUE_LABEL],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Rotation (or the application, which writes renewed values back) owns the value after
                    # the first deploy: the next `pulumi up` must not put the first value back over it. Nor
                    # may it move a label back: the stages are set once, at creation (an update would move
                    # AWSCURRENT back to this version), and a stack deployed before the label existed keeps
                    # its version as it is (no update, no replacement, no value written).
                    ignore_changes=["secret_string", "version_stages"] if entry.value_renewed
                    else ["version_stages"],
                    # A new value replaces the version: the old one gives up the label first (it keeps
                    # AWSCURRENT until the new one takes it), since a label cannot be on two versions.
                    delete_before_replace=True,
                    # The provider's Delete removes every label the state last read on the version but
                    # AWSCURRENT (terraform-provider-aws secret_version.go, resourceSecretVersionDelete): after a
                    # rotation and a refresh, AWSPREVIOUS, which verifiers of the previous key still read. A
                    # retained version leaves the state only, and AWS keeps its labels; a replacement's new
                    # version takes AWSCURRENT and the program's label from it as PutSecretValue moves them.
                    retain_on_delete=True,
                ),
            )
        platform_policy = grants.shared_secret_resource_policy(args.account_id, args.shared_roles)
        existing = args.adopted.existing_statements() if args.adopted is not None else []
        self.policy = aws.secretsmanager.SecretPolicy(
            f"{name}-policy",
            secret_arn=self.secret.arn,
            # PutResourcePolicy replaces the whole document: an adopted secret's own statements are kept in it.
            policy=iam.merged_document(platform_policy, existing, where=f"resource policy of {name}",
                                       limit=iam.SECRET_POLICY_LIMIT) if existing else
            iam.document(platform_policy, where=f"resource policy of {name}", limit=iam.SECRET_POLICY_LIMIT),
            block_public_policy=True,
            opts=child,
        )
        outputs: dict[str, object] = {"arn": self.secret.arn, "name": self.secret_name}
        if args.adopted is not None:
            outputs.update(_follow_up(args.adopted, platform_policy, existing, tags))
        self.register_outputs(outputs)

    def _adopt(self, name: str, args: CatalogSecretArgs, adopted: Adoption) -> None:
        """Import the existing secret: declare exactly what DescribeSecret returns, write nothing.

        An input that differs from what the provider reads back (terraform-provider-aws secret.go reads
        description, kms_key_id, name, replica, policy, tags) either fails the import or, since
        pulumi/pulumi#19339, is applied right after it: the first `pulumi up` would change the secret. So
        exactly those are declared, and `policy` is left unset (Optional+Computed: an existing resource
        policy stays). No SecretVersion: the secret keeps its value and ARN.
        """
        self.secret_name = adopted.name
        self.keys = tuple(args.entry.values)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=adopted.name,
            description=adopted.description,
            kms_key_id=adopted.kms_key_id,
            replicas=[aws.secretsmanager.SecretReplicaArgs(region=r.region, kms_key_id=r.kms_key_id)
                      for r in adopted.replicas] or None,
            tags=dict(adopted.tags) or None,
            # The provider reads neither property back after an import and would otherwise show its
            # defaults (30 days, false) as a change (pulumi/pulumi-aws#5241); neither exists in AWS.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect,
                                        import_=adopted.arn,
                                        ignore_changes=["recoveryWindowInDays", "forceOverwriteReplicaSecret"]),
        )
        self.arn = self.secret.arn
        self.register_outputs({"arn": self.secret.arn, "name": self.secret_name, "adopted": adopted.arn})

    @staticmethod
    def _compose(entry: Secret, present: list[str], resolved: Mapping[str, str],
                 plain: Mapping[str, str | int | bool]) -> str:
        values: dict[str, str | int | bool] = {**plain, **resolved}
        if not entry.grouped:
            return str(values[""])
        document: dict[str, str | int | bool] = {}
        for key in present:
            value = entry.values[key]
            if value.template is not None:
                document[key] = render_template(value.template, values)
            else:
                document[key] = values[key]
        # Keys the platform adds (the ARN of a rotation's admin secret) come last.
        document.update({k: v for k, v in resolved.items() if k not in entry.values})
        return json.dumps(document, separators=(",", ":"))


def _replicas(args: CatalogSecretArgs) -> list[aws.secretsmanager.SecretReplicaArgs]:
    """The stack's replicas under the environment's replica keys; an adopted secret's own replicas keep their
    keys until `rekeyReplicas`. The provider identifies a replica by region and key together (terraform-provider-aws
    secret.go, the `replica` set's hash), so a new key is a removal (RemoveRegionsFromReplication, denied to CI in
    production) and an addition: the follow-up step must not make it."""
    keep = args.adopted.replicas if args.adopted is not None and not args.adopted.rekey_replicas else ()
    kept = {r.region for r in keep}
    return [
        *(aws.secretsmanager.SecretReplicaArgs(region=r.region, kms_key_id=r.kms_key_id) for r in keep),
        *(aws.secretsmanager.SecretReplicaArgs(region=region, kms_key_id=key)
          for region, key in sorted(args.replica_keys.items()) if region not in kept),
    ]


def _follow_up(adopted: Adoption, platform: list[iam.Statement], existing: list[dict[str, object]],
               tags: Mapping[str, str]) -> dict[str, object]:
    """What the follow-up step does to an adopted secret's tags, policy and replicas: logged (the engine and the
    offline preview show warnings) and recorded in the component's outputs."""
    kept = sorted(k for k, v in adopted.tags.items() if tags.get(k) == v)
    replaced = sorted(k for k, v in adopted.tags.items() if tags.get(k) != v)  # a platform or stack-wide tag
    statements = [s.sid for s in platform] + [str(s.get("Sid") or f"existing statement {i}")
                                               for i, s in enumerate(existing, 1)]
    parts = [f"keeps its tags {', '.join(kept) or '(none)'}"
             + (f", replaces {', '.join(replaced)} with the platform's" if replaced else ""),
             f"resource policy: {', '.join(statements)} "
             + ("(the existing policy's statements kept)" if existing else "(no existing policy recorded)")]
    if adopted.replicas:
        regions = ", ".join(r.region for r in adopted.replicas)
        parts.append(f"replicas {regions} move to the environment's replica keys (each removed and added again)"
                     if adopted.rekey_replicas else f"replicas {regions} keep their keys (rekeyReplicas moves them)")
    pulumi.log.warn(f"adopted {adopted.name}: " + "; ".join(parts))
    return {"adopted": adopted.arn, "keptTags": kept, "replacedTags": replaced, "policyStatements": statements,
            "replicasRekeyed": adopted.rekey_replicas}


def made_by_rotation(entry: Secret) -> frozenset[str]:
    """The keys of a generated server credential with a `master` that its first rotation makes inside AWS:
    the password and every template built from it (the rotation function rebuilds `url`). The program's
    first version holds the other keys only, so no generated password enters Pulumi state."""
    rotation = entry.rotation
    if not entry.needs_first_install or not isinstance(rotation, Rotation) or rotation.master is None:
        return frozenset()
    return frozenset({"password"} | {k for k, v in entry.values.items()
                                     if v.template is not None and "password" in PLACEHOLDER_REF.findall(v.template)})
