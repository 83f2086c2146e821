"""One environment of an application: its KMS key(s) and every catalog secret it has."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi

from components import consumers, first_value, first_values, grants, iam, lambda_package, recovery
from components.access import AccessPolicy, AccessPolicyArgs, PolicyTarget
from components.access_alerts import AccessAlerts, AccessAlertsArgs
from components.access_alerts import plan as access_alerts_plan
from components.account import check_recovered, check_regions, check_scheduled_deletions, stack_lookup
from components.adopt import check_adoptions
from components.alerts import RotationAlerts, RotationAlertsArgs
from components.catalog import Catalog, Rotation, Secret, needed_keys
from components.errors import ConfigurationError
from components.kms import EnvironmentKey, EnvironmentKeyArgs
from components.lambda_package import PendingStep
from components.lookup import role_arns
from components.managed import (
    check_managed_masters,
    managed_external,
    managed_external_role,
    managed_external_rotations,
    managed_rotations,
)
from components.names import ENVIRONMENT_TYPE, access_policy, rotation_function
from components.public_key import private_denied, public_name, published_by, with_public_keys
from components.rotation import (
    DATABASE_STRATEGIES,
    RotatedSecret,
    RotationFunction,
    RotationFunctionArgs,
    code_archive,
    execution_role,
    function_arn,
    function_name,
    in_vpc_function,
    log_group_arn,
    rotation_groups,
    rotation_targets,
)
from components.secret import CatalogSecret, CatalogSecretArgs
from components.settings import Principal, StackSettings
from components.sharing import Share, check_shared_adoptions, role_shares, roles_of, shares_of
from components.values import (
    MissingValue,
    SuppliedValues,
    check_config_keys,
    check_differences,
    check_literal_defaults,
    deploy_checks,
    development_values,
    read_supplied,
)

MISSING_VALUES_TAG = "missing-values"
"""Tag of the environment's key when the stack file sets allowMissingValues (value `allowed`); the pack's
`stack-requires-values` rule refuses it in production."""


@dataclass(frozen=True)
class SecretsEnvironmentArgs:
    """Inputs of an environment."""

    catalog: Catalog
    """The parsed catalog shared by all stacks."""
    settings: StackSettings
    """This stack's settings."""


@dataclass(frozen=True)
class FirstInstall:
    """A generated server credential: nothing logs in with it until it is installed on its server."""

    secret: str
    """Catalog name."""
    strategy: str
    master: str | None
    """The admin credential that installs it (catalog `rotation.master`)."""
    status: str
    """`at-deploy`: the first rotation, run by `pulumi up`, installs it; `waits-for-master`: the master
    has no value in this stack yet (the credential's value and schedule come with it); `no-master`:
    nothing installs it."""
    master_adopted: bool = False
    """The master is an adopted secret: it waits for the adoption's follow-up step, not for a value."""

    @property
    def action(self) -> str:
        if self.status == "at-deploy":
            return (f"none: `pulumi up` rotates it at once and the {self.strategy} function installs it with "
                    f"{self.master}'s admin credential (`python -m ops list` shows it until that rotation succeeds)")
        if self.status == "waits-for-master" and self.master_adopted:
            return (f"finish adopting {self.master} (the follow-up step: `imported: true` in secrets-platform:adopt, "
                    "which puts it on the environment's key); until then this secret has no value, and that step's "
                    "`pulumi up` writes it and installs it with that admin credential")
        if self.status == "waits-for-master":
            return (f"set the value of {self.master} (listed above); until then this secret has no value, and the "
                    "next `pulumi up` writes it and installs it with that admin credential")
        return ("name an admin credential in the catalog (rotation.master: a secret holding a role allowed to "
                "create roles and change passwords) so that `pulumi up` installs it, or set it on the server by hand")


@dataclass(frozen=True)
class EnvBinding:
    """One environment variable fed by a secret (or one JSON key of it)."""

    variable: str
    secret: str
    key: str


class SecretsEnvironment(pulumi.ComponentResource):
    """The key, the secrets and the consumer-facing outputs of one environment."""

    key: EnvironmentKey
    replica_keys: dict[str, EnvironmentKey]
    secrets: dict[str, CatalogSecret]
    bindings: list[EnvBinding]
    missing: list[MissingValue]
    pending_steps: list[PendingStep]
    deploy_checks: list[str]
    rotation_functions: dict[str, RotationFunction]
    first_values: dict[str, first_value.FirstValueFunction]
    """The first-value functions of the generated secrets no function rotates, by group."""
    first_installs: list[FirstInstall]
    policies: dict[str, AccessPolicy]
    alerts: RotationAlerts | None
    managed_rotations: Mapping[str, pulumi.CustomResource]
    app: str
    _publishers: dict[str, str]
    _consumers: dict[str, tuple[str, ...]]
    _ecs: list[tuple[EnvBinding, pulumi.Output[dict[str, str]]]] | None = None
    shares: dict[str, Share]
    """Other accounts this environment shares secrets with (catalog `shared_with`)."""
    _share_scope: Callable[..., grants.Scope]
    _key_arns: list[pulumi.Output[str]]

    def __init__(self, name: str, args: SecretsEnvironmentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ENVIRONMENT_TYPE, name, None, opts)
        catalog, settings = args.catalog, args.settings
        env = settings.environment
        self.app = catalog.app
        base_tags = {**settings.tags, "app": catalog.app, "environment": env, "managed-by": "pulumi"}
        child = pulumi.ResourceOptions(parent=self)
        if env not in catalog.environments:
            raise ConfigurationError(
                settings.file, f"environment '{env}' is not one of the catalog's environments "
                f"({', '.join(catalog.environments)}); add it to 'environments' in {catalog.path}",
                field="secrets-platform:environment",
            )
        self.pending_steps: list[PendingStep] = []
        # A jwt-rs256 key's public half is a secret of its own (components/public_key.py).
        # `firstValues: aws`: rotated tokens and HS256 keys without a `first_value` of their own are made in AWS.
        secrets = with_public_keys(first_values.effective(catalog.for_environment(env), settings.first_values,
                                                          settings.adopt))
        publishers = self._publishers = published_by(secrets)
        self._consumers = {n: tuple(e.consumers) for n, e in secrets.items()}
        _check_services(catalog, settings, secrets)
        check_config_keys(catalog, settings)
        consumption = consumers.load(settings.file, settings.account_id, settings.region, secrets)
        # A consumer that may hold a revoked credential: refused in production, a warning elsewhere.
        for warning in consumers.check(secrets, consumption, settings.file, env == grants.PRODUCTION):
            pulumi.log.warn(warning)
        restart_targets = consumers.restart_targets(secrets, consumption, catalog.app, env)
        consumers.targets_fit(restart_targets, settings.file)
        check_literal_defaults(catalog)
        development_values(settings)  # refused in production, whether or not a value starts dev-
        # Every check that can fail runs before the first resource is registered: `pulumi up` applies
        # registrations as they come, so a late error would leave a half-applied stack.
        check_adoptions(settings.adopt, secrets, {n for n, e in secrets.items() if isinstance(e.rotation, Rotation)},
                        settings.file, catalog.app, env,
                        masters={m: n for n, e in secrets.items() if (m := _master(e)) is not None},
                        recovering=settings.recovery is not None)
        check_managed_masters(settings.managed_masters, secrets, settings.file, catalog.path, settings.adopt)
        managed = settings.managed_masters
        # An adopted secret keeps the value it has: the stack supplies none of it.
        # A value a rotation here needs (catalog.needed_keys) is required here, whatever `required` says.
        needed = needed_keys(secrets)
        supplied = {n: SuppliedValues(secret={}, plain={}, missing=[]) if n in settings.adopt
                    else read_supplied(catalog, n, e, settings, needed.get(n)) for n, e in secrets.items()}
        check_differences(secrets, settings, supplied)
        self.shares = shares_of(secrets, settings.account_id, catalog.path, env, catalog.environments)
        if settings.recovery is None:  # a recovery stack's secrets are on the replica key, which grants the shares
            check_shared_adoptions(self.shares, settings.adopt, catalog.path)
        self.deploy_checks = deploy_checks(catalog, secrets, env)

        # Rotation roles first: the key policy names them, and AWS refuses a key policy whose
        # principals do not exist yet.
        by_strategy: dict[str, list[str]] = {}
        for secret_name, entry in secrets.items():
            if isinstance(entry.rotation, Rotation):
                by_strategy.setdefault(entry.rotation.strategy, []).append(secret_name)
        groups = rotation_groups(by_strategy)
        functions = tuple(function_arn(settings.region, settings.account_id, function_name(catalog.app, env, g))
                          for g in groups)
        # Generated values no function rotates: made once inside AWS (components/first_value.py).
        once_groups = first_value.groups([n for n, e in secrets.items()
                                          if first_value.made_once(e) and n not in settings.adopt])
        once_functions = tuple(function_arn(settings.region, settings.account_id, function_name(catalog.app, env, g))
                               for g in once_groups)
        specs = _access_specs(catalog, settings, secrets, functions, once_functions)
        _preflight(catalog, settings, secrets, groups, specs)
        # Last of the checks, and the only one that asks AWS: every role the config names exists.
        arns = role_arns(settings)
        # Then what the account holds: regions not enabled, names scheduled for deletion (components/account.py).
        check_regions(settings)
        check_scheduled_deletions(settings, catalog.app, [f"{catalog.app}/{env}/{n}" for n in secrets
                                                          if n not in settings.adopt], stack_lookup(settings))
        if settings.recovery is not None:  # a recovery stack: components/recovery.py
            check_recovered(settings, catalog.app, stack_lookup(settings))
        # Reads by principals the stack does not name (components/access_alerts.py), checked before anything exists.
        access = access_alerts_plan(settings, catalog.app, secrets, arns, groups, role_shares(self.shares))
        if settings.allow_missing_values:
            # It lets a value be missing and nothing else; a missing one is still a secret without a value.
            pulumi.log.warn(
                f"secrets-platform:allowMissingValues is on in {settings.file}: `pulumi up` creates a secret whose "
                "required value is not set without a value (its consumers fail until it is set) instead of "
                "stopping; every check on a value that is set still runs. The policy pack refuses it in production."
            )
        if settings.principals.ci and not settings.ci_reads_values:
            # terraform-provider-aws reads a secret version back with GetSecretValue after writing it
            # (secret_version.go), so a CI role without it previews but cannot deploy.
            pulumi.log.warn(
                "secrets-platform:principals.ci is set without secrets-platform:ciReadsValues: the CI role may "
                "preview but not run `pulumi up` (the provider reads each secret version back with "
                "GetSecretValue); set ciReadsValues: true if CI deploys this stack"
            )
        if groups or once_groups:
            self.pending_steps.extend(lambda_package.pending(settings))
        roles = {
            group: execution_role(f"{name}-rotate-{group}-role", catalog.app, env, settings.account_id,
                                  group, base_tags, child) if settings.recovery is None
            else recovery.existing_role(function_name(catalog.app, env, group), settings.file, settings.recovery.stack)
            for group in groups
        }
        p = settings.principals
        readers: list[pulumi.Input[str]] = [arns[r.name] for r in p.runtime]
        readers += [arns[r.name] for roles_ in p.services.values() for r in roles_]
        # Whoever runs `pulumi up` stores the values it generates through the key: the CI roles and
        # the deployers named in config.
        writers: list[pulumi.Input[str]] = [arns[r.name] for r in (*p.ci, *p.deployers)]
        once_roles = {group: first_value.execution_role(f"{name}-{group}-role", catalog.app, env, settings.account_id,
                                                        group, base_tags, child) for group in once_groups}
        writers += [role.arn for role in (*roles.values(), *once_roles.values())]
        # Managed external secrets: Secrets Manager rotates them as a role of the stack's (no function).
        external = managed_external(secrets)
        external_role_name = rotation_function(catalog.app, env, "managed-external")
        external_role = (managed_external_role(f"{name}-managed-external-role", catalog.app, env,
                                               settings.account_id, base_tags, child) if settings.recovery is None
                         else recovery.existing_role(external_role_name, settings.file, settings.recovery.stack)
                         ) if external else None
        if external_role is not None:
            writers.append(external_role.arn)
        # Services that write renewed values back (`rotation: application`) store through the key too.
        writers += [arns[r.name] for w in sorted({w for e in secrets.values() for w in e.writers})
                    for r in p.services.get(w, ())]
        if not p.ci and not p.deployers:
            # Nobody named: the account's IAM policies decide who may store values (the key is still
            # usable only through Secrets Manager).
            writers.append(iam.account_root(settings.account_id))

        # The stack file's allowMissingValues, where the policy pack sees it (it is refused in production):
        # on the environment's key, which every stack has once.
        key_tags = {**base_tags, MISSING_VALUES_TAG: "allowed"} if settings.allow_missing_values else base_tags

        def key_args(region: str, replica: bool) -> EnvironmentKeyArgs:
            return EnvironmentKeyArgs(
                app=catalog.app, environment=env, account_id=settings.account_id,
                region=region, deletion_window_days=settings.kms_deletion_window_days,
                tags=base_tags if replica else key_tags,
                protect=settings.protect, replica=replica, readers=readers, writers=writers,
                shared={arn: tuple(f"{catalog.app}/{env}/{n}" for n in names)
                        for arn, names in role_shares(self.shares).items()},
                existing_arn=settings.recovery.kms_key_arn if settings.recovery and not replica else None,
            )

        self.key = EnvironmentKey(f"{name}-kms", key_args(settings.region, False), child)
        self.replica_keys = {
            region: EnvironmentKey(f"{name}-kms-{region}", key_args(region, True), child)
            for region in settings.replica_regions
        }
        key_arns = [self.key.arn, *(k.arn for k in self.replica_keys.values())]

        self.secrets = {}
        self.bindings = []
        self.missing = []

        def stored(n: str) -> pulumi.Resource | None:
            """What gives secret `n` a value in AWS: the version the program writes, or for an adopted secret
            declared the platform's way (`imported: true`, on the environment's key) the secret itself."""
            found = self.secrets[n]
            if found.version is not None:
                return found.version
            adopted = settings.adopt.get(n)
            return found.secret if adopted is not None and adopted.imported else None

        # Admin secrets first: a rotated secret stores its admin secret's ARN as `masterarn`.
        admin_names = {m for m in map(_master, secrets.values()) if m is not None}
        order = sorted(secrets, key=lambda n: 0 if n in admin_names else 1)
        for secret_name in order:
            entry = secrets[secret_name]
            self.missing.extend(supplied[secret_name].missing)
            master = _master(entry)
            secret = CatalogSecret(
                f"{name}-{secret_name}",
                CatalogSecretArgs(
                    app=catalog.app, environment=env, name=secret_name, entry=entry,
                    owner=catalog.owner_of(entry), kms_key_arn=self.key.arn, supplied=supplied[secret_name],
                    account_id=settings.account_id,
                    recovery_window_days=settings.recovery_window_days, protect=settings.protect,
                    replica_keys={region: key.arn for region, key in self.replica_keys.items()},
                    extra_tags=settings.tags,
                    extra_values={"masterarn": self.secrets[master].arn} if master else (
                        {"masterarn": managed[secret_name].arn} if secret_name in managed else {}),
                    # A generated server credential is useless until its master installs it.
                    held=entry.needs_first_install and master is not None and stored(master) is None,
                    published_by=publishers.get(secret_name),
                    adopted=settings.adopt.get(secret_name),
                    shared_roles=roles_of(secret_name, self.shares),
                    made_once=any(secret_name in members for members in once_groups.values()),
                ),
                child,
            )
            self.secrets[secret_name] = secret
        self.secrets = {n: self.secrets[n] for n in secrets}  # back to catalog order
        for secret_name, entry in secrets.items():
            secret = self.secrets[secret_name]
            for key, value in entry.values.items():
                if key not in secret.keys:
                    continue  # an optional value this stack does not set feeds nothing
                self.bindings.extend(EnvBinding(var, secret_name, key) for var in value.env)

        self.first_installs = []
        for secret_name, entry in secrets.items():
            if entry.needs_first_install and not any(g.required for g in supplied[secret_name].missing):
                master = _master(entry)
                status = "no-master" if master is None else (
                    "at-deploy" if stored(master) is not None else "waits-for-master")
                if secret_name in managed:  # AWS keeps the managed master's value: it always has one
                    master, status = managed[secret_name].label, "at-deploy"
                self.first_installs.append(FirstInstall(secret_name, _strategy(entry), master, status,
                                                        master_adopted=master in settings.adopt))
        installs = {i.secret: i for i in self.first_installs}

        self.alerts = None
        self.restarts: consumers.ConsumerRestarts | None = None
        self.rotation_functions: dict[str, RotationFunction] = {}
        others = tuple(e for e in catalog.environments if e != env)
        if by_strategy:
            self.alerts = RotationAlerts(f"{name}-rotation-alerts", RotationAlertsArgs(
                app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region,
                tags=base_tags,
                alarms=consumers.alarms_prefix(catalog.app, env) if restart_targets["secrets"] else None,
                other_rules=(access.rule_arn,) if access is not None and not access.own_topic else (),
            ), child)
            code = code_archive()
            for group, (strategy, names) in groups.items():
                rotated = tuple(
                    RotatedSecret(name=n, entry=secrets[n], arn=self.secrets[n].arn, secret=self.secrets[n].secret,
                                  # An adopted secret holds its value already: the schedule need not wait.
                                  version=stored(n),
                                  first_value_by_rotation=self.secrets[n].first_value_by_rotation,
                                  install_at_deploy=n in installs and installs[n].master is not None,
                                  master_version=stored(m) if (m := _master(secrets[n])) else None,
                                  public_key_secret=self.secrets[public_name(n)].secret
                                  if secrets[n].public_key is not None else None,
                                  master_managed=n in managed)
                    for n in names if not recovery.waits_for_import(settings, n)
                )
                if not rotated and settings.recovery is not None:
                    continue  # its secrets are being imported: the function comes with `imported: true`
                masters = tuple(sorted({m for n in names if (m := _master(secrets[n]))}))
                self.rotation_functions[group] = RotationFunction(
                    f"{name}-rotate-{group}",
                    RotationFunctionArgs(
                        app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region,
                        replica_regions=settings.replica_regions, strategy=strategy, group=group, secrets=rotated,
                        masters=masters, other_environments=others, catalog_path=catalog.path,
                        key_arns=key_arns, role=roles[group], code=code,
                        subnet_ids=settings.rotation_subnet_ids,
                        security_group_ids=settings.rotation_security_group_ids, tags=base_tags,
                        managed_masters=tuple((managed[n].arn, managed[n].kms_key_arn) for n in names if n in managed),
                        policy_name=recovery.policy_name(function_name(catalog.app, env, group), settings.region)
                        if settings.recovery else None,
                    ),
                    child,
                )
            if restart_targets["secrets"] and settings.recovery is None:  # its role's name is the primary's
                restarted = {s for services in restart_targets["secrets"].values() for s in services}
                self.restarts = consumers.ConsumerRestarts(f"{name}-restart-consumers", consumers.ConsumerRestartsArgs(
                    app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region,
                    targets=restart_targets,
                    ecs_services=tuple(c for s, c in sorted(consumption.items())
                                       if s in restarted and isinstance(c, consumers.EcsService)),
                    functions=tuple(c for s, c in sorted(consumption.items())
                                    if s in restarted and isinstance(c, consumers.LambdaColdStart)),
                    alerts_topic_arn=self.alerts.topic.arn, code=code, runtime=lambda_package.RUNTIME,
                    tags=base_tags,
                ), child)

        self.access_alerts = AccessAlerts(f"{name}-access-alerts", AccessAlertsArgs(
            app=catalog.app, environment=env, plan=access, rotation_alerts=self.alerts, tags=base_tags,
        ), child) if access is not None else None
        self.first_values = {
            group: first_value.FirstValueFunction(f"{name}-{group}", first_value.FirstValueArgs(
                app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region, group=group,
                secrets={n: secrets[n] for n in members},
                secret_resources={n: self.secrets[n].secret for n in members}, role=once_roles[group],
                key_arns=key_arns, code=code_archive(), replica_regions=settings.replica_regions,
                other_environments=others, tags=base_tags,
            ), child)
            for group, members in once_groups.items()
        }

        # The managed masters' own schedules, where this stack sets them (RDS rotates them itself).
        self.managed_rotations = managed_rotations(name, managed, child)
        self.managed_external_rotations: Mapping[str, pulumi.CustomResource] = {}
        if external_role is not None:
            def external_scope(values: list[str]) -> grants.Scope:
                return grants.Scope(app=catalog.app, environment=env, account_id=settings.account_id,
                                    region=settings.region, key_arns=tuple(values),
                                    replica_regions=settings.replica_regions, other_environments=others)

            self.managed_external_rotations = managed_external_rotations(
                f"{name}-managed-external", external_role,
                f"{external_role_name}-{settings.region}" if settings.recovery else external_role_name,
                external_scope, key_arns,
                {n: (r, self.secrets[n].arn, stored(n)) for n, r in external.items()}, base_tags, child)

        target = PolicyTarget(
            app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region,
            replica_regions=settings.replica_regions, key_arns=key_arns, tags=base_tags,
            other_environments=others,
        )
        # A recovery stack's access is the primary stack's: its policies cover every replica region already.
        self.policies = {} if settings.recovery is not None else {
            key: AccessPolicy(spec.name, AccessPolicyArgs(
                target=target, access=spec.access, principals=spec.principals, statements=spec.statements,
                description=spec.description,
            ), child)
            for key, spec in specs.items()
        }
        self._share_scope = functools.partial(
            grants.Scope, app=catalog.app, environment=env, account_id=settings.account_id, region=settings.region,
            replica_regions=settings.replica_regions)
        self._key_arns = key_arns
        self.register_outputs({
            "secretArns": self.secret_arns(),
            "keyArn": self.key.arn,
        })

    def policy_arns(self) -> dict[str, pulumi.Output[str]]:
        """Access policy ARNs: `read`, `ci`, `service:<consumer>`."""
        return {name: policy.arn for name, policy in self.policies.items()}

    def secret_arns(self) -> dict[str, pulumi.Output[str]]:
        """Secret ARNs by catalog name."""
        return {name: s.arn for name, s in self.secrets.items()}

    def public_keys(self) -> dict[str, dict[str, pulumi.Input[str]]]:
        """Signing secret -> where verifiers read its public keys: the public secret's name, ARN and JSON key."""
        return {
            signing: {"secretName": self.secrets[public].secret_name, "arn": self.secrets[public].arn,
                      "jsonKey": "jwks"}
            for public, signing in self._publishers.items()
        }

    def env_vars(self) -> dict[str, str]:
        """Environment variable -> `<secret name>` or `<secret name>:<json key>`."""
        return {
            b.variable: self.secrets[b.secret].secret_name + (f":{b.key}" if b.key else "")
            for b in sorted(self.bindings, key=lambda b: b.variable)
        }

    def _ecs_entries(self) -> list[tuple[EnvBinding, pulumi.Output[dict[str, str]]]]:
        """Each variable's entry of an ECS `secrets` list, by variable, made once for every list."""
        if self._ecs is None:
            def entry(variable: str, value_from: str) -> dict[str, str]:
                return {"name": variable, "valueFrom": value_from}

            self._ecs = [
                (b, pulumi.Output.concat(self.secrets[b.secret].arn, f":{b.key}::" if b.key else "").apply(
                    functools.partial(entry, b.variable)))
                for b in sorted(self.bindings, key=lambda b: b.variable)
            ]
        return self._ecs

    def ecs_secrets(self, service: str | None = None) -> pulumi.Output[list[dict[str, str]]]:
        """The `secrets` list of an ECS container definition (seed 000, section 4): every variable, or
        those of the secrets `service` consumes."""
        entries = [e for b, e in self._ecs_entries() if service is None or service in self._consumers[b.secret]]
        return pulumi.Output.all(*entries).apply(list)

    def ecs_secrets_by_service(self) -> dict[str, pulumi.Output[list[dict[str, str]]]]:
        """Per consuming service, its container's `secrets` list: exactly the secrets its read policy
        covers (the whole list would name variables its task role may not read, and ECS does not start a
        task whose secrets it cannot fetch)."""
        services = sorted({c for consumers in self._consumers.values() for c in consumers})
        return {service: self.ecs_secrets(service) for service in services}

    def env_example(self) -> str:
        """A `.env.example` for local development: every variable with a placeholder, never a value."""
        lines = [f"# {self.app}: every variable the catalog defines, generated by the secrets platform; fill "
                 "in for local development only"]
        for b in sorted(self.bindings, key=lambda b: (b.secret, b.key, b.variable)):
            source = self.secrets[b.secret].secret_name + (f" ({b.key})" if b.key else "")
            lines.append(f"# from {source}")
            lines.append(f"{b.variable}=")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _AccessSpec:
    """One access policy before its resources exist (so that it can be checked first)."""

    name: str
    access: str
    principals: tuple[Principal, ...]
    statements: Callable[[grants.Scope], list[iam.Statement]]
    description: str


def _access_specs(catalog: Catalog, settings: StackSettings, secrets: dict[str, Secret],
                  rotation_functions: tuple[str, ...], first_value_functions: tuple[str, ...] = ()
                  ) -> dict[str, _AccessSpec]:
    """The read-only (runtime), per-service and CI policies, attached to the configured roles."""
    env, app = settings.environment, catalog.app
    # The runtime reads every secret but the admin credentials only rotation functions use.
    masters = sorted({m for e in secrets.values() if (m := _master(e))} - {
        n for n, e in secrets.items() if e.consumers})
    app_written = sorted(n for n, e in secrets.items() if e.writers)
    specs = {
        "read": _AccessSpec(
            access_policy(app, env, "secrets-read"), "read", settings.principals.runtime,
            functools.partial(grants.read_statements, secrets=None, denied=masters, app_written=app_written),
            f"Read every {app} secret of {env}; nothing else",
        ),
        "ci": _AccessSpec(
            access_policy(app, env, "secrets-ci"), "ci", settings.principals.ci,
            functools.partial(grants.ci_statements, reads_values=settings.ci_reads_values,
                              min_recovery_days=settings.recovery_window_days, rotation_functions=rotation_functions,
                              first_value_functions=first_value_functions),
            f"Deploy {app}'s {env} secrets; never delete production's",
        ),
    }
    for consumer in sorted({c for e in secrets.values() for c in e.consumers}):
        mine = [n for n, e in secrets.items() if consumer in e.consumers]
        specs[f"service:{consumer}"] = _AccessSpec(
            access_policy(app, env, f"{consumer}-secrets-read"), "read",
            settings.principals.services.get(consumer, ()),
            # A verifier is denied the private key explicitly, whatever else its role holds.
            functools.partial(grants.read_statements, secrets=mine, denied=masters, app_written=app_written,
                              private_keys=private_denied(secrets, consumer)),
            f"Read the {app} {env} secrets the {consumer} service uses",
        )
    for writer in sorted({w for e in secrets.values() for w in e.writers}):
        renewed = [n for n, e in secrets.items() if writer in e.writers]
        specs[f"write:{writer}"] = _AccessSpec(
            access_policy(app, env, f"{writer}-secrets-write"), "app-write",
            settings.principals.services.get(writer, ()),
            functools.partial(grants.app_write_statements, secrets=renewed),
            f"Write back the {app} {env} values the {writer} service renews itself",
        )
    return specs


def _preflight(catalog: Catalog, settings: StackSettings, secrets: dict[str, Secret],
               groups: dict[str, tuple[str, list[str]]], specs: dict[str, _AccessSpec]) -> None:
    """Render every policy and rotation setting once with stand-in key ARNs of the real length, so
    that a limit AWS would refuse is reported before anything is created."""
    env, account = settings.environment, settings.account_id
    regions = (settings.region, *settings.replica_regions)
    scope = grants.Scope(
        app=catalog.app, environment=env, account_id=account, region=settings.region,
        key_arns=tuple(f"arn:aws:kms:{r}:{account}:key/{'0' * 36}" for r in regions),
        replica_regions=settings.replica_regions,
        other_environments=tuple(e for e in catalog.environments if e != env),
    )
    for spec in specs.values():
        iam.document(spec.statements(scope), where=f"policy {spec.name}")
    for group, (strategy, names) in groups.items():
        if strategy in DATABASE_STRATEGIES and not settings.rotation_subnet_ids:
            raise ConfigurationError(
                settings.file, f"the {strategy} rotation of {', '.join(names)} must reach its server: set "
                "rotationSubnetIds and rotationSecurityGroupIds (subnets with a route to the server and "
                "to Secrets Manager)", field="secrets-platform:rotationSubnetIds",
            )
        rotation_targets(catalog.app, env, strategy, {n: secrets[n] for n in names}, catalog.path)
        masters = sorted({m for n in names if (m := _master(secrets[n]))})
        fn = function_name(catalog.app, env, group)
        in_vpc = in_vpc_function(strategy, settings.rotation_subnet_ids)
        iam.document(grants.rotation_statements(
            scope, names, masters, log_group_arn(settings.region, account, fn),
            subnet_ids=settings.rotation_subnet_ids if in_vpc else (),
            publishes=[public_name(n) for n in names if secrets[n].public_key is not None])
            + grants.managed_master_statements(scope, [(settings.managed_masters[n].arn,
                                                        settings.managed_masters[n].kms_key_arn)
                                                       for n in names if n in settings.managed_masters]),
            where=f"rotation policy {fn}")


def _master(entry: Secret) -> str | None:
    """The catalog secret holding the admin credential (None for none, or an RDS-managed one)."""
    master = entry.rotation.master if isinstance(entry.rotation, Rotation) else None
    return master if isinstance(master, str) else None


def _strategy(entry: Secret) -> str:
    assert isinstance(entry.rotation, Rotation)
    return entry.rotation.strategy


def _check_services(catalog: Catalog, settings: StackSettings, secrets: dict[str, Secret]) -> None:
    """Every service named in stack config is a consumer of some secret of this environment, and every
    consumer has a role when the stack names any: a policy attached to nobody is a typo's footprint."""
    consumers = {c for e in secrets.values() for c in e.consumers}
    named = {c for e in secrets.values() for c in (*e.consumers, *e.writers)}
    with_roles = sorted(settings.principals.services)
    for service in settings.principals.services:
        if service not in consumers:
            raise ConfigurationError(
                settings.file, f"service '{service}' reads no secret: no catalog secret lists it under "
                f"'consumers' (consumers: {', '.join(sorted(consumers)) or 'none'})",
                field=f"secrets-platform:principals.services.{service}",
            )
    published = published_by(secrets)
    for secret_name, entry in secrets.items():
        if secret_name in published:
            continue  # a public key's consumers are its signer's consumers and verifiers, checked as written there
        verifiers = entry.public_key.verifiers if entry.public_key is not None else []
        for field, services in (("consumers", entry.consumers), ("writers", entry.writers),
                                ("public_key.verifiers", verifiers)):
            for service in services:
                if with_roles and service not in settings.principals.services:
                    close = difflib.get_close_matches(service, with_roles, n=1, cutoff=0.75)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    raise ConfigurationError(
                        catalog.path, f"'{service}' has no role in {settings.file}'s principals.services, so its "
                        f"policy would be attached to nobody ({hint}services with roles: {', '.join(with_roles)})",
                        secret=secret_name, field=field,
                    )
                # Without roles in the stack (nor a `services:` list in the catalog), a name one letter
                # off another is taken for a typo.
                twins = [] if with_roles or catalog.services is not None else [
                    o for o in named if o != service and difflib.SequenceMatcher(None, service, o).ratio() >= 0.85]
                if twins:
                    raise ConfigurationError(
                        catalog.path, f"'{service}' looks like a typo of '{sorted(twins)[0]}'; if both are services, "
                        "list them under `services:` at the top of the catalog", secret=secret_name, field=field,
                    )


def shared_with_output(environment: SecretsEnvironment) -> dict[str, pulumi.Output[dict[str, object]]]:
    """Per other account, per role: the secrets it reads (ARN patterns, every region) and the identity policy
    that account attaches to the role, the third grant of a cross-account read (the resource and key
    policies are this stack's)."""
    def render(keys: list[str], share: Share) -> dict[str, object]:
        scope = environment._share_scope(key_arns=tuple(keys))
        return {role: {
            "secrets": {n: list(scope.secret(n)) for n in names},
            "identityPolicy": iam.document(grants.shared_consumer_statements(scope, names),
                                           where=f"identity policy of {role}"),
        } for role, names in share.roles.items()}

    return {account: pulumi.Output.all(*environment._key_arns).apply(functools.partial(render, share=share))
            for account, share in environment.shares.items()}
