"""The baseline: a plain Pulumi program, no ComponentResource, that declares the same resources.

It reads the catalog YAML with `yaml.safe_load` (no validation model) and the stack config with
`pulumi.Config`, and declares every custom resource `__main__.py` declares for a benchmark catalog
(bench/generate.py) with the same type, the same logical name, the same inputs and the same
options (protect, ignore_changes, depends_on), each a child of the stack: the KMS key and alias, per
secret the secret, its generated values, its version and its resource policy, the rotation alerts
(topic, topic policy, rule, target), per rotation group of `GROUP_SIZE` secrets of a strategy
(`token`, `token-2`, ...) a role, log group, policy, attachment and function and per rotated secret
an invoke permission and a schedule, and the runtime, CI and per-service access policies with their
attachments. The policy documents are rendered by the same pure functions (`components.iam`,
`components.grants`, `components.kms.key_policy_statements`), which are no components. It handles the
shapes the generator makes (every external value set, token rotation only, no replicas, no VPC, no
master secrets), not every catalog: `bench` checks that the two runs declare the same resources.
"""

from __future__ import annotations

import json
import re
import string
import urllib.parse
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import yaml

from components import grants, iam
from components.kms import EnvironmentKeyArgs, key_policy_statements
from components.rotation import GROUP_SIZE

PROJECT = "secrets-platform"
REF = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
ALPHABETS = {"alphanumeric": string.ascii_letters + string.digits, "hex": "0123456789abcdef"}

config = pulumi.Config(PROJECT)
region = pulumi.Config("aws").require("region")
account = config.require("accountId")
stack = pulumi.get_stack()
env = config.get("environment") or stack
protect = config.get_bool("protectSecrets") or False
recovery = config.get_int("recoveryWindowDays") or 30
tags_cfg: dict[str, str] = config.get_object("tags") or {}
principals: dict[str, Any] = config.get_object("principals") or {}
doc = yaml.safe_load(Path(config.get("catalog") or "catalog.yaml").read_text())
app, owner = doc["app"], doc["owner"]
others = tuple(e for e in doc["environments"] if e != env)
secrets: dict[str, dict[str, Any]] = doc["secrets"]
prefix = f"{app}-{env}"
base_tags = {**tags_cfg, "app": app, "environment": env, "managed-by": "pulumi"}


def camel(secret: str, key: str) -> str:
    words = re.split(r"[-_]", f"{secret}-{key}" if key else secret)
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:] if w)


def role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def values_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(entry["keys"]) if "keys" in entry else {"": entry["value"]}


def spec_dump(spec: dict[str, Any]) -> dict[str, Any]:
    """The generate spec with the catalog model's defaults (an empty `exclude` left out), as the
    rotation function receives it."""
    if spec["kind"] == "password":
        return {k: v for k, v in {"alphabet": "alphanumeric", **spec}.items() if v != ""}
    return dict(spec)


def scope_of(key_arns: list[str]) -> grants.Scope:
    return grants.Scope(app=app, environment=env, account_id=account, region=region, key_arns=tuple(key_arns),
                        other_environments=others)


runtime_roles = [str(r) for r in principals.get("runtime", [])]
ci_roles = [str(r) for r in principals.get("ci", [])]
service_roles = {name: [str(r) for r in roles] for name, roles in principals.get("services", {}).items()}

# Rotation roles first (the key policy names them): one per group of GROUP_SIZE secrets of a strategy.
by_strategy: dict[str, list[str]] = {}
for secret_name, entry in secrets.items():
    if isinstance(entry.get("rotation"), dict):
        by_strategy.setdefault(entry["rotation"]["strategy"], []).append(secret_name)
groups: dict[str, tuple[str, list[str]]] = {}
for strategy, names in sorted(by_strategy.items()):
    for index in range(0, len(names), GROUP_SIZE):
        groups[strategy + ("" if index == 0 else f"-{index // GROUP_SIZE + 1}")] = (strategy,
                                                                                  names[index:index + GROUP_SIZE])
roles: dict[str, aws.iam.Role] = {}
for group in groups:
    roles[group] = aws.iam.Role(
        f"{prefix}-rotate-{group}-role", name=f"{app}-{env}-rotate-{group}"[:64],
        description=f"Runs the {group} rotation of {app}/{env}",
        assume_role_policy=iam.trust_policy("lambda.amazonaws.com", account),
        tags={**base_tags, "access": "rotation"},
    )
readers: list[pulumi.Input[str]] = [*runtime_roles, *(r for rs in service_roles.values() for r in rs)]
writers: list[pulumi.Input[str]] = [*ci_roles, *(role.arn for role in roles.values())]
if not ci_roles:
    writers.append(iam.account_root(account))
key_args = EnvironmentKeyArgs(app=app, environment=env, account_id=account, region=region, deletion_window_days=0)


def key_policy(both: list[list[str]]) -> str:
    return iam.document(key_policy_statements(key_args, both[0], both[1]), where="key policy",
                        limit=iam.KEY_POLICY_LIMIT)


key = aws.kms.Key(
    f"{prefix}-kms-key", description=f"Encrypts the {env} secrets of {app} in {region}", enable_key_rotation=True,
    deletion_window_in_days=config.get_int("kmsDeletionWindowDays") or 30, bypass_policy_lockout_safety_check=False,
    policy=pulumi.Output.all(readers, writers).apply(key_policy), region=None, tags=dict(base_tags),
    opts=pulumi.ResourceOptions(protect=protect),
)
aws.kms.Alias(f"{prefix}-kms-alias", name=f"alias/{app}/{env}/secrets", target_key_id=key.key_id, region=None)

resource_policy = iam.document(grants.secret_resource_policy(account), where="resource policy",
                               limit=iam.SECRET_POLICY_LIMIT)
secret_resources: dict[str, aws.secretsmanager.Secret] = {}
versions: dict[str, aws.secretsmanager.SecretVersion] = {}
bindings: list[tuple[str, str, str]] = []
for secret_name, entry in secrets.items():
    name = f"{prefix}-{secret_name}"
    rotation = entry.get("rotation", "manual")
    rotated = isinstance(rotation, dict)
    tags = {**tags_cfg, "app": app, "environment": env, "class": entry["class"], "owner": entry.get("owner", owner),
            "rotation": f"{rotation['every_days']}d" if rotated else rotation, "managed-by": "pulumi"}
    if rotated:
        tags["rotation-strategy"] = rotation["strategy"]
        if rotation.get("kind") == "signing-key":
            tags["rotation-kind"] = "signing-key"
    if entry.get("rotation_reason"):
        tags["rotation-reason"] = entry["rotation_reason"]
    secret = aws.secretsmanager.Secret(
        f"{name}-secret", name=f"{app}/{env}/{secret_name}", description=entry["description"],
        kms_key_id=key.arn, recovery_window_in_days=recovery, replicas=[], tags=tags,
        opts=pulumi.ResourceOptions(protect=protect, retain_on_delete=protect),
    )
    secret_resources[secret_name] = secret
    values = values_of(entry)
    parts: dict[str, pulumi.Output[str]] = {}
    plain: dict[str, Any] = {}
    for k, value in values.items():
        if "generate" in value:
            spec, rname = value["generate"], f"{name}-{k or 'value'}"
            if spec["kind"] == "bytes":
                raw = random.RandomBytes(rname, length=spec["bytes"])
                parts[k] = raw.hex if spec["encoding"] == "hex" else raw.base64
            elif spec["kind"] == "password":
                alphabet = ALPHABETS[spec.get("alphabet", "alphanumeric")]
                chars = "".join(sorted(set(alphabet) - set(spec.get("exclude", ""))))
                parts[k] = random.RandomPassword(rname, length=spec["length"], lower=False, upper=False, numeric=False,
                                                 special=True, override_special=chars).result
            else:
                parts[k] = pulumi.Output.secret(random.RandomUuid(rname, opts=pulumi.ResourceOptions(
                    additional_secret_outputs=["result"])).result)
        elif "external" in value:
            parts[k] = config.require_secret((value["external"] or {}).get("config") or camel(secret_name, k))
        elif "config" in value:
            source = value["config"] or {}
            raw_value = config.get(source.get("config") or camel(secret_name, k)) or source.get("default")
            plain[k] = int(str(raw_value)) if value.get("type") == "integer" else raw_value
        for var in [value["env"]] if isinstance(value.get("env"), str) else value.get("env", []):
            bindings.append((var, secret_name, k))

    def compose(resolved: dict[str, str], values: dict[str, Any] = values, plain: dict[str, Any] = plain,
                grouped: bool = "keys" in entry) -> str:
        merged = {**plain, **resolved}
        if not grouped:
            return str(merged[""])
        document = {
            k: REF.sub(lambda m: urllib.parse.quote(str(merged[m.group(1)]), safe=""), v["template"])
            if "template" in v else merged[k]
            for k, v in values.items()
        }
        return json.dumps(document, separators=(",", ":"))

    combined = pulumi.Output.all(**parts) if parts else pulumi.Output.from_input({})
    composed: pulumi.Output[str] = combined.apply(compose)
    secret_string: pulumi.Output[str] = pulumi.Output.secret(composed)
    versions[secret_name] = aws.secretsmanager.SecretVersion(
        f"{name}-value", secret_id=secret.id, secret_string=secret_string,
        opts=pulumi.ResourceOptions(ignore_changes=["secret_string"] if rotated else None),
    )
    aws.secretsmanager.SecretPolicy(f"{name}-policy", secret_arn=secret.arn, policy=resource_policy,
                                    block_public_policy=True)

key_arns = [key.arn]
topic: aws.sns.Topic | None = None
if groups:
    # Failed rotations of the environment: one topic, its policy, one rule, one target.
    alerts = f"{prefix}-rotation-alerts"
    secret_prefix = f"arn:aws:secretsmanager:{region}:{account}:secret:{app}/{env}/"
    topic = aws.sns.Topic(f"{alerts}-topic", name=f"{app}-{env}-rotation-failures", tags=dict(base_tags))
    failures = aws.cloudwatch.EventRule(
        f"{alerts}-rule", name=f"{app}-{env}-rotation-failures",
        description=f"Failed, abandoned or failed-test rotations of {app}/{env} secrets",
        event_pattern=json.dumps({
            "source": ["aws.secretsmanager"], "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {
                "eventSource": ["secretsmanager.amazonaws.com"],
                "eventName": ["RotationFailed", "RotationAbandoned", "TestRotationFailed"],
                "$or": [
                    {"additionalEventData": {"SecretId": [{"prefix": secret_prefix}]}},
                    {"serviceEventDetails": {"secretId": [{"prefix": secret_prefix}]}},
                ],
            },
        }, separators=(",", ":")),
        tags=dict(base_tags),
    )
    aws.sns.TopicPolicy(
        f"{alerts}-topic-policy", arn=topic.arn,
        policy=pulumi.Output.all(topic.arn, failures.arn).apply(lambda arns: iam.document([iam.Statement(
            sid="RuleOfThisEnvironmentPublishes", effect="Allow", principals={"Service": ("events.amazonaws.com",)},
            actions=("sns:Publish",), resources=(arns[0],), conditions={"ArnEquals": {"aws:SourceArn": (arns[1],)}},
        )], where="topic policy")),
    )
    aws.cloudwatch.EventTarget(f"{alerts}-target", rule=failures.name, arn=topic.arn)

    code = pulumi.FileArchive("build/rotation-lambda")
    for group, (strategy, names) in groups.items():
        rname, fn_name = f"{prefix}-rotate-{group}", f"{app}-{env}-rotate-{group}"[:64]
        fn_tags = {**base_tags, "app": app, "environment": env}
        logs = aws.cloudwatch.LogGroup(f"{rname}-logs", name=f"/aws/lambda/{fn_name}", retention_in_days=90,
                                       tags=fn_tags)

        def render(resolved: list[str], names: list[str] = names) -> str:
            *arns, log_arn = resolved
            return iam.document(grants.rotation_statements(scope_of(arns), names, (), log_arn),
                                where="rotation policy")

        policy = aws.iam.Policy(
            f"{rname}-policy", name=f"{fn_name}-policy",
            description=f"The {strategy} rotation function of {app}/{env}",
            policy=pulumi.Output.all(*key_arns, logs.arn).apply(render), tags={**fn_tags, "access": "rotation"},
        )
        attachment = aws.iam.RolePolicyAttachment(f"{rname}-policy-attachment", role=roles[group].name,
                                                  policy_arn=policy.arn)
        targets = {}
        for n in names:
            generated = [(k, v) for k, v in values_of(secrets[n]).items() if "generate" in v]
            key_name, value = generated[0]
            targets[f"{app}/{env}/{n}"] = ({"key": key_name or None, "generate": spec_dump(value["generate"])}
                                           if strategy == "token" else {})
        function = aws.lambda_.Function(
            f"{rname}-function", name=fn_name,
            description=f"Secrets Manager rotation ({strategy}) for {app}/{env}", runtime="python3.12",
            handler="rotation.handler.lambda_handler", code=code, role=roles[group].arn, timeout=60,
            memory_size=256,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "ROTATION_STRATEGY": strategy,
                "ROTATION_TARGETS": json.dumps(targets, sort_keys=True, separators=(",", ":")),
            }),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=logs.name),
            tags=fn_tags, opts=pulumi.ResourceOptions(depends_on=[logs, attachment]),
        )
        for n in names:
            rule = secrets[n]["rotation"]
            every, expression = rule.get("every_days"), rule.get("schedule")
            if every is not None and rule.get("window") is not None:  # a window goes with a schedule expression
                every, expression = None, f"rate({every} {'day' if every == 1 else 'days'})"
            permission = aws.lambda_.Permission(
                f"{rname}-{n}-invoke", action="lambda:InvokeFunction", function=function.name,
                principal="secretsmanager.amazonaws.com", source_account=account, source_arn=secret_resources[n].arn,
            )
            aws.secretsmanager.SecretRotation(
                f"{rname}-{n}-schedule", secret_id=secret_resources[n].arn, rotation_lambda_arn=function.arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=every, schedule_expression=expression, duration=rule.get("window"),
                ),
                rotate_immediately=False,
                opts=pulumi.ResourceOptions(depends_on=[permission, secret_resources[n], versions[n]]),
            )

# Access policies: read-everything (runtime, one env-prefix pattern), CI, one per consumer service.
masters = sorted({e["rotation"]["master"] for e in secrets.values()
                  if isinstance(e.get("rotation"), dict) and e["rotation"].get("master")}
                 - {n for n, e in secrets.items() if e.get("consumers")})
access: list[tuple[str, str, str, list[str], Any, str]] = [
    ("read", f"{app}-{env}-secrets-read", "read", runtime_roles,
     lambda s: grants.read_statements(s, None, denied=masters), f"Read every {app} secret of {env}; nothing else"),
    ("ci", f"{app}-{env}-secrets-ci", "ci", ci_roles,
     lambda s: grants.ci_statements(s, reads_values=config.get_bool("ciReadsValues") or False,
                                    min_recovery_days=recovery, rotation_functions=tuple(
                                        f"arn:aws:lambda:{region}:{account}:function:"
                                        + f"{app}-{env}-rotate-{g}"[:64] for g in groups)),
     f"Deploy {app}'s {env} secrets; never delete production's"),
]
for consumer in sorted({c for e in secrets.values() for c in e.get("consumers", [])}):
    mine = [n for n, e in secrets.items() if consumer in e.get("consumers", [])]
    access.append((f"service:{consumer}", f"{app}-{env}-{consumer}-secrets-read", "read",
                   service_roles.get(consumer, []), lambda s, mine=mine: grants.read_statements(s, mine, masters),
                   f"Read the {app} {env} secrets the {consumer} service uses"))
policy_arns: dict[str, pulumi.Output[str]] = {}
for label, pname, kind, arns, statements, description in access:
    def render_access(resolved: list[str], statements: Any = statements, pname: str = pname) -> str:
        return iam.document(statements(scope_of(resolved)), where=f"policy {pname}")

    managed = aws.iam.Policy(f"{pname}-policy", name=pname, description=description,
                             policy=pulumi.Output.all(*key_arns).apply(render_access),
                             tags={**base_tags, "app": app, "environment": env, "access": kind})
    policy_arns[label] = managed.arn
    for arn in arns:
        aws.iam.RolePolicyAttachment(f"{pname}-{role_name(arn)}", role=role_name(arn), policy_arn=managed.arn)

pulumi.export("secretArns", {n: s.arn for n, s in secret_resources.items()})


def ecs_entry(variable: str) -> Any:
    return lambda value_from: {"name": variable, "valueFrom": value_from}


ecs_entries = [(s, pulumi.Output.concat(secret_resources[s].arn, f":{k}::" if k else "").apply(ecs_entry(var)))
               for var, s, k in sorted(bindings)]
pulumi.export("ecsSecrets", pulumi.Output.all(*[e for _, e in ecs_entries]))
pulumi.export("ecsSecretsByService", {
    consumer: pulumi.Output.all(*[e for s, e in ecs_entries if consumer in secrets[s].get("consumers", [])])
    for consumer in sorted({c for e in secrets.values() for c in e.get("consumers", [])})
})
pulumi.export("kmsKeyArn", key.arn)
pulumi.export("policyArns", policy_arns)
pulumi.export("rotationAlertsTopicArn", topic.arn if topic else None)
