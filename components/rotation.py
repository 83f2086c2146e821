"""Rotation: one Lambda per strategy used in a stack, and a schedule per rotated secret."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import grants, iam, lambda_package, names, schedule
from components.catalog import BytesSpec, PasswordSpec, Rotation, Secret, UuidSpec
from components.errors import ConfigurationError
from components.public_key import public_name
from components.recovery import ExistingRole
from components.secret import made_by_rotation

LAMBDA_RUNTIME = lambda_package.RUNTIME
HANDLER = "rotation.handler.lambda_handler"
LOG_RETENTION_DAYS = 90
DEFAULT_RSA_BITS = 4096
"""A jwt-rs256 key pair's size when the catalog gives no `bits`."""

DATABASE_STRATEGIES = frozenset({"postgres-single-user", "postgres-alternating-users", "redis-acl"})
"""Strategies whose function talks to a server, and so runs in the stack's VPC when one is configured."""


role_name = function_name = names.rotation_function
"""The name of a rotation group's role and function (components/names.py)."""

GROUP_SIZE = 25
"""Secrets per rotation function: its policy lists each secret's ARN (IAM's 6,144-character limit)
and its environment names each secret (Lambda's 4 KB limit); a strategy with more secrets gets
several functions (`token`, `token-2`, ...)."""


def rotation_groups(by_strategy: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, list[str]]]:
    """Group name -> (strategy, secret names): at most GROUP_SIZE secrets per function."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for strategy, secrets in sorted(by_strategy.items()):
        for index in range(0, len(secrets), GROUP_SIZE):
            suffix = "" if index == 0 else f"-{index // GROUP_SIZE + 1}"
            groups[f"{strategy}{suffix}"] = (strategy, list(secrets[index:index + GROUP_SIZE]))
    return groups

ENVIRONMENT_LIMIT = 4096
"""Lambda's limit on a function's environment variables, all together."""


@dataclass(frozen=True)
class RotatedSecret:
    """One secret a rotation function rotates."""

    name: str
    """Catalog name."""
    entry: Secret
    """The catalog entry (its rotation is a `Rotation`)."""
    arn: pulumi.Input[str]
    """The secret's ARN."""
    secret: pulumi.Resource
    """The secret resource (the schedule depends on it)."""
    version: pulumi.Resource | None
    """Its first value: Secrets Manager tests the rotation when the schedule is set, so the value
    must exist first."""
    first_value_by_rotation: bool = False
    """The function makes the first value: the schedule rotates at once (RotateImmediately)."""
    install_at_deploy: bool = False
    """A generated server credential with a `master`: the schedule rotates at once, and that first
    rotation installs a password on the server with the master credential."""
    master_version: pulumi.Resource | None = None
    """The master secret's value, which that first rotation logs in with; None while it is not set."""
    public_key_secret: pulumi.Resource | None = None
    """The `-public-key` secret a jwt-rs256 rotation's setSecret writes (components/public_key.py): every
    rotation, the first one included, fails at setSecret until it exists."""
    master_managed: bool = False
    """The master is an RDS-managed secret: AWS keeps its value, so the first rotation need not wait for it."""

    @property
    def rotation(self) -> Rotation:
        assert isinstance(self.entry.rotation, Rotation)
        return self.entry.rotation

    def parameters(self) -> dict[str, object]:
        """This secret's entry in the function's `ROTATION_TARGETS` (rotation/README.md)."""
        return parameters(self.entry, self.name)


def parameters(entry: Secret, secret_name: str = "") -> dict[str, object]:
    """A rotated secret's entry in its function's `ROTATION_TARGETS` (rotation/README.md): the
    catalog's generator, so that a rotated value is as strong as the first one; for jwt-rs256 the
    key size and the secret (`secret_name` + `-public-key`) it publishes the public keys in."""
    assert isinstance(entry.rotation, Rotation)
    strategy = entry.rotation.strategy
    if strategy == "jwt-rs256":
        rs256: dict[str, object] = {"bits": entry.rotation.bits or DEFAULT_RSA_BITS}
        if entry.public_key is not None:
            rs256["public"] = public_name(secret_name)
        return rs256
    generated = [(k, v.generate) for k, v in entry.values.items() if v.generate is not None]
    if strategy == "jwt-hs256":
        spec = next((g for k, g in generated if k == "key"), None)
        return {"bytes": spec.bytes} if isinstance(spec, BytesSpec) else {}
    # The catalog's templates, which the function renders again with the new value (rotation/template.py, the
    # renderer the program uses for the first value): same format, same optional parts.
    templates = {k: v.template for k, v in entry.values.items() if v.template is not None}
    if strategy == "token":
        key, spec = generated[0]
        return {"key": key or None, "generate": _spec(spec), **({"templates": templates} if templates else {})}
    password = next((g for k, g in generated if k == "password"), None)
    params: dict[str, object] = {"generate": _spec(password)} if password is not None else {}
    if entry.rotation.acl is not None:
        params["acl"] = entry.rotation.acl
    if "url" in made_by_rotation(entry):
        params["url"] = True  # the first version lacks the url (it holds the password): the function adds it
    if templates:
        params["templates"] = templates
    return params


def rotation_targets(app: str, environment: str, strategy: str, entries: Mapping[str, Secret],
                     catalog_path: str) -> str:
    """The function's `ROTATION_TARGETS`: each secret's name and generator, within Lambda's limit."""
    settings = {f"{app}/{environment}/{name}": parameters(entry, f"{app}/{environment}/{name}")
                for name, entry in entries.items()}
    targets = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    if len(targets) + 64 > ENVIRONMENT_LIMIT:
        raise ConfigurationError(
            catalog_path, f"the {strategy} rotation function would rotate {len(settings)} secrets, and their "
            f"names and generators ({len(targets)} bytes) exceed Lambda's {ENVIRONMENT_LIMIT}-byte environment; "
            "split them with a smaller GROUP_SIZE", field="rotation.strategy",
        )
    return targets


def in_vpc_function(strategy: str, subnet_ids: Sequence[str]) -> bool:
    return strategy in DATABASE_STRATEGIES and bool(subnet_ids)


def function_arn(region: str, account_id: str, fn_name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{fn_name}"


def log_group_arn(region: str, account_id: str, fn_name: str) -> str:
    return f"arn:aws:logs:{region}:{account_id}:log-group:{names.rotation_log_group(fn_name)}"


def _spec(spec: BytesSpec | PasswordSpec | UuidSpec) -> dict[str, object]:
    """A catalog generator in the shape rotation/generate.py reads (empty `exclude` left out)."""
    return {k: v for k, v in spec.model_dump(exclude_none=True).items() if v != ""}


@dataclass(frozen=True)
class RotationFunctionArgs:
    """Inputs of the rotation function of one group of secrets of one strategy."""

    app: str
    """Application name (first segment of the secret names)."""
    environment: str
    """Environment name (second segment)."""
    account_id: str
    """The account: invoke permissions accept calls from it only."""
    region: str
    """The stack's region."""
    replica_regions: tuple[str, ...]
    """Regions the secrets are replicated to (their ARNs are granted too)."""
    strategy: str
    """Which rotation strategy the function runs."""
    group: str
    """The function's name within the environment: the strategy, with `-2`, `-3`... for more groups."""
    secrets: tuple[RotatedSecret, ...]
    """The secrets it rotates; it refuses every other."""
    masters: tuple[str, ...]
    """Catalog names of the admin secrets it may read."""
    other_environments: tuple[str, ...]
    """The application's other environments, denied explicitly."""
    catalog_path: str
    """The catalog file (for errors)."""
    key_arns: Sequence[pulumi.Input[str]]
    """The environment's keys (primary first)."""
    role: aws.iam.Role | ExistingRole
    """The execution role (created before the key, whose policy names it; a recovery stack's is the primary's)."""
    code: pulumi.Archive
    """The packaged handler."""
    subnet_ids: tuple[str, ...] = ()
    """Subnets of a function that must reach its server (database strategies); none otherwise."""
    security_group_ids: tuple[str, ...] = ()
    """Security groups of that function."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the function, its log group and its policy."""
    managed_masters: tuple[tuple[str, str | None], ...] = ()
    """RDS-managed admin secrets it may read: (secret ARN, customer-managed key ARN or None)."""
    policy_name: str | None = None
    """The name of its policy; None: `<function>-policy`. A recovery stack's names its region (IAM names are
    global, and the primary stack's policy has the other)."""


def execution_role(name: str, app: str, environment: str, account_id: str, group: str,
                   tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The role a rotation function runs as; its rights come from the RotationFunction's policy."""
    return aws.iam.Role(
        name,
        name=role_name(app, environment, group),
        description=f"Runs the {group} rotation of {app}/{environment}",
        assume_role_policy=iam.trust_policy("lambda.amazonaws.com", account_id),
        tags={**tags, "access": "rotation"},
        opts=opts,
    )


class RotationFunction(pulumi.ComponentResource):
    """The Lambda of one strategy, its rights, its logs, and the schedules of the secrets it rotates."""

    function: aws.lambda_.Function
    policy: aws.iam.Policy
    log_group: aws.cloudwatch.LogGroup
    rotations: dict[str, aws.secretsmanager.SecretRotation]

    def __init__(self, name: str, args: RotationFunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:RotationFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        fn_name = function_name(args.app, args.environment, args.group)
        tags = {**args.tags, "app": args.app, "environment": args.environment}

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=names.rotation_log_group(fn_name), retention_in_days=LOG_RETENTION_DAYS, tags=tags,
            opts=child,
        )
        rotated = [s.name for s in args.secrets]
        publishes = [public_name(s.name) for s in args.secrets if s.entry.public_key is not None]
        # A function that talks to a server runs in the stack's VPC; its policy then lets Lambda manage
        # its network interfaces (grants.VPC_NETWORK_ACTIONS).
        in_vpc = in_vpc_function(args.strategy, args.subnet_ids)

        def render(values: list[str]) -> str:
            *key_arns, log_group_arn = values
            scope = grants.Scope(
                app=args.app, environment=args.environment, account_id=args.account_id, region=args.region,
                key_arns=tuple(key_arns), replica_regions=args.replica_regions,
                other_environments=args.other_environments,
            )
            return iam.document(grants.rotation_statements(
                scope, rotated, args.masters, log_group_arn, subnet_ids=args.subnet_ids if in_vpc else (),
                publishes=publishes)
                + grants.managed_master_statements(scope, args.managed_masters),
                where=f"rotation policy {name}")

        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=args.policy_name or names.rotation_policy(fn_name),
            # Static: AWS cannot change a managed policy's description, so a changing one would
            # replace the policy (and leave the function without rights meanwhile).
            description=f"The {args.strategy} rotation function of {args.app}/{args.environment}",
            policy=pulumi.Output.all(*args.key_arns, self.log_group.arn).apply(render),
            tags={**tags, "access": "rotation"},
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=args.role.name, policy_arn=self.policy.arn, opts=child,
        )
        attachments: list[pulumi.Resource] = [attachment]

        targets = rotation_targets(args.app, args.environment, args.strategy,
                                   {s.name: s.entry for s in args.secrets}, args.catalog_path)
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=fn_name,
            description=f"Secrets Manager rotation ({args.strategy}) for {args.app}/{args.environment}",
            runtime=LAMBDA_RUNTIME,
            handler=HANDLER,
            code=args.code,
            role=args.role.arn,
            timeout=60,
            memory_size=256,
            # Names and generation rules only: the function reads every value from Secrets Manager.
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "ROTATION_STRATEGY": args.strategy,
                "ROTATION_TARGETS": targets,
            }),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(args.subnet_ids), security_group_ids=list(args.security_group_ids),
            ) if in_vpc else None,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=self.log_group.name,
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, *attachments]),
        )

        self.rotations = {}
        for rotated_secret in args.secrets:
            if rotated_secret.version is None and not rotated_secret.first_value_by_rotation:
                # No value yet (a required value is not set: "action required"). RotateSecret is
                # asynchronous: the deploy would succeed, then Secrets Manager's testSecret on the empty
                # secret would fail (TestRotationFailed, an alert) and later scheduled rotations with it.
                # The schedule comes with the value, at the next `pulumi up`.
                continue
            if (rotated_secret.install_at_deploy and rotated_secret.master_version is None
                    and not rotated_secret.master_managed):
                continue  # the first rotation would log in with a master that has no value: it waits for it
            install = rotated_secret.first_value_by_rotation or rotated_secret.install_at_deploy
            rule = rotated_secret.rotation
            # With a window, `every_days` goes as rate(N days): AWS documents Duration against a
            # ScheduleExpression (components/schedule.py).
            rules = schedule.rotation_rules(rule.every_days, rule.schedule, rule.window)
            permission = aws.lambda_.Permission(
                f"{name}-{rotated_secret.name}-invoke",
                action="lambda:InvokeFunction",
                function=self.function.name,
                principal="secretsmanager.amazonaws.com",
                source_account=args.account_id,
                source_arn=rotated_secret.arn,
                opts=child,
            )
            self.rotations[rotated_secret.name] = aws.secretsmanager.SecretRotation(
                f"{name}-{rotated_secret.name}-schedule",
                secret_id=rotated_secret.arn,
                rotation_lambda_arn=self.function.arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=rules.automatically_after_days,
                    schedule_expression=rules.schedule_expression,
                    duration=rules.duration,
                ),
                # Either the program wrote the first value and rotation takes over on the schedule (AWS
                # then only runs testSecret), or the first rotation, run now, makes the first value (an
                # empty secret) or installs one on its server with the master credential.
                rotate_immediately=install,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    permission, rotated_secret.secret,
                    *(r for r in (rotated_secret.version, rotated_secret.master_version,
                                  rotated_secret.public_key_secret) if r is not None),
                ],
                    # Only the creation decides: a deployed secret switched to `first_value: rotation` has a
                    # value, and a changed input would make the provider rotate it at once (secret_rotation.go).
                    ignore_changes=["rotateImmediately"]),
            )

        self.register_outputs({"functionArn": self.function.arn})


def code_archive() -> pulumi.Archive:
    """The packaged handler; `make lambda` builds it (checked first: components/lambda_package.py)."""
    return pulumi.FileArchive(str(lambda_package.BUILD_DIR))
