"""Generated values no function rotates (`rotation: on-compromise` or `manual`), made inside AWS once.

Such a secret is created empty; `pulumi up` invokes the stack's first-value function once for it
(`aws.lambda_.Invocation`, default `lifecycle_scope` CREATE_ONLY: on creation or replacement only), which
writes a value only while the secret has none (rotation/first_value.py). Nothing rotates it afterwards. The
Invocation's input names the secret, and its `result` (kept in Pulumi state) says only whether a value was
written: no value ever passes through Pulumi.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import grants, iam, lambda_package, names
from components.catalog import BytesSpec, PasswordSpec, Secret, UuidSpec, Value

HANDLER = "rotation.first_value.lambda_handler"
GROUP = "first-value"
"""The function's name within the environment (`<app>-<env>-rotate-first-value`, components/names.py)."""
GROUP_SIZE = 25
"""Secrets per first-value function: its policy names each one's ARN (IAM's 6,144 characters)."""
LOG_RETENTION_DAYS = 90
FIRST_VALUE_TAG = "function"
"""The secret's `first-value` tag: made once inside AWS by the first-value function."""


def made_once(entry: Secret) -> bool:
    """A generated value no function rotates: the first-value function makes every generated value of the secret,
    and every other value (if any) is put with `python -m ops put` (`external: {put: ops}`), which keeps the
    generated keys it finds. A secret that mixes generated keys with values the program writes (a supplied or
    plain config value, a template) keeps pulumi-random: its one version holds both, and only the program can
    write it."""
    return entry.rotation in ("on-compromise", "manual") and any(
        v.generate is not None for v in entry.values.values()) and all(
        v.generate is not None or _put(v) for v in entry.values.values())


def put_keys(entry: Secret) -> tuple[str, ...]:
    """The keys of a secret that `python -m ops put` writes (`external: {put: ops}`), in catalog order."""
    return tuple(k for k, v in entry.values.items() if _put(v))


def generated_keys(entry: Secret) -> tuple[str, ...]:
    """The keys the first-value function writes, in catalog order."""
    return tuple(k for k, v in entry.values.items() if v.generate is not None)


def _put(value: Value) -> bool:
    return value.external is not None and value.external.put == "ops"


def groups(secrets: Sequence[str]) -> dict[str, list[str]]:
    """Function group -> its secrets: `first-value`, `first-value-2`, ... of at most GROUP_SIZE each."""
    return {GROUP + ("" if i == 0 else f"-{i // GROUP_SIZE + 1}"): list(secrets[i:i + GROUP_SIZE])
            for i in range(0, len(secrets), GROUP_SIZE)}


def _spec(spec: BytesSpec | PasswordSpec | UuidSpec) -> dict[str, object]:
    return {k: v for k, v in spec.model_dump(exclude_none=True).items() if v != ""}


def targets(app: str, environment: str, entries: Mapping[str, Secret]) -> str:
    """FIRST_VALUE_TARGETS: each secret's keys and generators (names and rules, never a value)."""
    return json.dumps({f"{app}/{environment}/{name}": {key: _spec(value.generate)
                                                       for key, value in entry.values.items()
                                                       if value.generate is not None}
                       for name, entry in entries.items()}, sort_keys=True, separators=(",", ":"))


def kept_keys(app: str, environment: str, entries: Mapping[str, Secret]) -> str:
    """FIRST_VALUE_KEPT: each mixed secret's keys put with `python -m ops put` (names only), which the function
    never writes and cannot read: it refuses to replace such a secret's value, which would drop them."""
    return json.dumps({f"{app}/{environment}/{name}": list(put_keys(entry))
                       for name, entry in entries.items() if put_keys(entry)}, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FirstValueArgs:
    """Inputs of one first-value function and its invocations."""

    app: str
    """Application name (first segment of the secret names)."""
    environment: str
    """Environment name (second segment)."""
    account_id: str
    """The account."""
    region: str
    """The stack's region."""
    group: str
    """The function's name within the environment (GROUP, `-2`, ... for more)."""
    secrets: Mapping[str, Secret]
    """Catalog name -> entry: the secrets whose first value it makes."""
    secret_resources: Mapping[str, aws.secretsmanager.Secret]
    """Catalog name -> its secret (each invocation waits for it)."""
    role: aws.iam.Role
    """The execution role (created before the key, whose policy lets it store values)."""
    key_arns: Sequence[pulumi.Input[str]]
    """The environment's keys (primary first)."""
    code: pulumi.Archive
    """The packaged handler (the rotation package)."""
    replica_regions: tuple[str, ...] = ()
    """Regions the secrets are replicated to."""
    other_environments: tuple[str, ...] = ()
    """The application's other environments, denied explicitly."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the function, its log group and its policy."""


class FirstValueFunction(pulumi.ComponentResource):
    """A Lambda that writes the first value of each of its secrets once, and one invocation per secret."""

    function: aws.lambda_.Function
    invocations: dict[str, aws.lambda_.Invocation]

    def __init__(self, name: str, args: FirstValueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("secrets-platform:index:FirstValueFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        fn_name = names.rotation_function(args.app, args.environment, args.group)
        tags = {**args.tags, "app": args.app, "environment": args.environment}
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=names.rotation_log_group(fn_name), retention_in_days=LOG_RETENTION_DAYS, tags=tags,
            opts=child)
        secret_names = list(args.secrets)

        def render(values: list[str]) -> str:
            *key_arns, log_group_arn = values
            scope = grants.Scope(app=args.app, environment=args.environment, account_id=args.account_id,
                                 region=args.region, key_arns=tuple(key_arns), replica_regions=args.replica_regions,
                                 other_environments=args.other_environments)
            return iam.document(grants.first_value_statements(scope, secret_names, log_group_arn),
                                where=f"first-value policy {name}")

        policy = aws.iam.Policy(
            f"{name}-policy", name=names.rotation_policy(fn_name),
            description=f"Writes the first value of {args.app}/{args.environment} secrets no function rotates",
            policy=pulumi.Output.all(*args.key_arns, log_group.arn).apply(render),
            tags={**tags, "access": "rotation"}, opts=child)
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=args.role.name, policy_arn=policy.arn, opts=child)
        self.function = aws.lambda_.Function(
            f"{name}-function", name=fn_name,
            description=f"First values of {args.app}/{args.environment} secrets no function rotates",
            runtime=lambda_package.RUNTIME, handler=HANDLER, code=args.code, role=args.role.arn,
            timeout=30, memory_size=128,
            # Names and generation rules only: the function writes values, and never reads one.
            # FIRST_VALUE_KEPT only where a secret has keys put by ops: a stack without any keeps its function as is.
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "FIRST_VALUE_TARGETS": targets(args.app, args.environment, args.secrets),
                **({"FIRST_VALUE_KEPT": kept} if (kept := kept_keys(args.app, args.environment, args.secrets))
                   != "{}" else {})}),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, attachment]))
        self.invocations = {
            secret: aws.lambda_.Invocation(
                f"{name}-{secret}",
                function_name=self.function.name,
                # The secret's name alone; the answer ({"secret", "written"}) is all the state keeps.
                input=json.dumps({"FirstValue": f"{args.app}/{args.environment}/{secret}"}),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.secret_resources[secret]]))
            for secret in secret_names
        }
        self.register_outputs({"functionArn": self.function.arn})


def execution_role(name: str, app: str, environment: str, account_id: str, group: str,
                   tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The role the first-value function runs as; its rights come from the component's policy."""
    return aws.iam.Role(
        name, name=names.rotation_function(app, environment, group),
        description=f"Writes the first values of {app}/{environment} secrets no function rotates",
        assume_role_policy=iam.trust_policy("lambda.amazonaws.com", account_id),
        tags={**tags, "access": "rotation"}, opts=opts)
