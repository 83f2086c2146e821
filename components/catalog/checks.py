"""The catalog's checks across fields and secrets, and the one entry point that reads a catalog file.

Every mistake (syntax, unknown field, duplicate secret, weak generator, bad reference) becomes one
`ConfigurationError` naming the file, the secret and the field.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from components import schedule
from components.catalog.loading import _best_error, _locate, load_yaml
from components.catalog.model import (
    CRITICAL_MIN_BITS,
    FIRST_VALUE_KEYS,
    KEY_EXAMPLES,
    KEY_NAME,
    MANAGED_EXTERNAL_KEYS,
    NEEDS_KEYS,
    NEEDS_MASTER,
    PLACEHOLDER_REF,
    SECRET_NAME,
    SIGNING_KEY_STRATEGIES,
    Catalog,
    CatalogFile,
    ManagedExternal,
    ManagedMasterRef,
    Rotation,
    Secret,
    _Model,
    config_key,
)
from components.errors import ConfigurationError
from components.names import public_name
from rotation import template as templates

_MODEL_PLACES = {
    "BytesSpec": "'generate'", "PasswordSpec": "'generate'", "UuidSpec": "'generate'", "ExternalSource": "'external'",
    "ConfigSource": "'config'", "Value": "a value ('value' or 'keys.<key>')", "Rotation": "'rotation'",
    "PublicKey": "'public_key'", "Secret": "a secret", "CatalogFile": "the top of the catalog",
}
"""Where the fields of each catalog model are written, for a field given in the wrong place."""


def _field_places() -> dict[str, list[str]]:
    """Every field name (or alias) of the catalog's models -> where it may be written."""
    places: dict[str, list[str]] = {}
    pending: list[type[BaseModel]] = [_Model]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for name, info in model.model_fields.items():
            place = _MODEL_PLACES.get(model.__name__, model.__name__)
            if place not in places.setdefault(info.alias or name, []):
                places[info.alias or name].append(place)
    return places


def _did_you_mean(field: str) -> str:
    places = _field_places()
    if field in places:  # a real field, in the wrong place
        return f"; '{field}' belongs to {' or '.join(sorted(places[field]))}"
    close = difflib.get_close_matches(field, sorted(places), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_catalog(data: Any, path: str) -> Catalog:
    """Validate parsed YAML into a Catalog; the first problem becomes a ConfigurationError."""
    if not isinstance(data, dict):
        raise ConfigurationError(path, "the catalog must be a mapping with 'app', 'owner' and 'secrets'")
    secrets = data.get("secrets")
    if isinstance(secrets, dict):
        for name in secrets:
            if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
                raise ConfigurationError(
                    path, f"secret name must match {SECRET_NAME.pattern} (lowercase, digits, '-')",
                    secret=str(name), field="name",
                )
    try:
        parsed = CatalogFile.model_validate(data)
    except ValidationError as exc:
        error = _best_error(exc.errors())
        secret, field = _locate(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field" + _did_you_mean(str(error["loc"][-1]))
        elif error["type"] == "missing":
            message = "required field is missing"
        elif isinstance(error.get("input"), str | int | float | bool) and f"'{error['input']}'" not in message:
            message = f"{message} (got {_short(error['input'])})"
        raise ConfigurationError(path, message, secret=secret, field=field) from None
    catalog = Catalog(path=path, app=parsed.app, owner=parsed.owner, secrets=dict(parsed.secrets),
                      environments=tuple(parsed.environments),
                      services=tuple(parsed.services) if parsed.services is not None else None)
    for name, entry in catalog.secrets.items():
        _check_secret(path, name, entry, catalog.environments)
    _check_public_keys(catalog)
    _check_env_unique(catalog)
    _check_config_keys(catalog)
    _check_masters(catalog)
    _check_managed_external(catalog)
    _check_differs_from(catalog)
    _check_services(catalog, parsed.services)
    return catalog


def _check_differs_from(catalog: Catalog) -> None:
    """Each `differs_from` names another external value of the catalog."""
    for name, secret in catalog.secrets.items():
        for key, value in secret.values.items():
            for ref in value.differs_from:
                other_name, _, other_key = ref.partition(".")
                other = catalog.secrets.get(other_name)
                target = other.values.get(other_key) if other is not None else None
                if target is None or target.external is None or (other_name, other_key) == (name, key):
                    raise ConfigurationError(
                        catalog.path, f"differs_from '{ref}' is not another external value of the catalog "
                        "(`<secret>` or `<secret>.<key>`)", secret=name,
                        field=f"{'keys.' + key if key else 'value'}.differs_from",
                    )
                assert other is not None
                # Where the other secret is absent the check has nothing to compare with: it would pass in silence.
                mine = secret.environments if secret.environments is not None else catalog.environments
                absent = [e for e in mine if other.environments is not None and e not in other.environments]
                if absent:
                    raise ConfigurationError(
                        catalog.path, f"differs_from '{ref}' names a secret that {', '.join(absent)} does not have "
                        f"(its environments: {', '.join(other.environments or ())}), where this one is; limit this "
                        "secret to the same environments, or drop the constraint", secret=name,
                        field=f"{'keys.' + key if key else 'value'}.differs_from",
                    )


def _check_services(catalog: Catalog, services: list[str] | None) -> None:
    """With a `services:` list, every consumer and writer must be one of them (a typo would create a
    policy attached to nobody)."""
    if services is None:
        return
    for name, secret in catalog.secrets.items():
        verifiers = secret.public_key.verifiers if secret.public_key is not None else []
        for field, named in (("consumers", secret.consumers), ("writers", secret.writers),
                             ("public_key.verifiers", verifiers)):
            for service in named:
                if service not in services:
                    close = difflib.get_close_matches(service, services, n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"services: {', '.join(services)}"
                    raise ConfigurationError(catalog.path, f"'{service}' is not in the catalog's services ({hint})",
                                             secret=name, field=field)


def _check_config_keys(catalog: Catalog) -> None:
    """Two values may not read the same stack config key: one `pulumi config set` would feed both."""
    seen: dict[str, tuple[str, bool]] = {}
    for name, secret in catalog.secrets.items():
        for key, value in secret.values.items():
            source = value.external or value.config
            if source is None:
                continue
            ckey = config_key(name, key, source.config)
            where = f"{name}:{key}" if key else name
            # Plain values may share a key on purpose (a host two secrets use), named explicitly.
            shareable = value.config is not None and source.config is not None
            if ckey in seen and not (shareable and seen[ckey][1]):
                raise ConfigurationError(
                    catalog.path, f"config key '{ckey}' is already read by '{seen[ckey][0]}'; give one of them an "
                    "explicit 'config' key", secret=name, field=f"keys.{key}" if key else "value",
                )
            seen.setdefault(ckey, (where, shareable))


def _check_masters(catalog: Catalog) -> None:
    for name, entry in catalog.secrets.items():
        if not isinstance(entry.rotation, Rotation) or entry.rotation.master is None:
            continue
        if isinstance(entry.rotation.master, ManagedMasterRef):
            _check_managed_master(catalog.path, name, entry.rotation)
            continue
        master = catalog.secrets.get(entry.rotation.master)
        if master is None or entry.rotation.master == name:
            raise ConfigurationError(catalog.path, f"master '{entry.rotation.master}' is not another secret of the "
                                     "catalog", secret=name, field="rotation.master")
        mine = set(entry.environments) if entry.environments is not None else None
        theirs = set(master.environments) if master.environments is not None else None
        if theirs is not None and (mine is None or not mine <= theirs):
            raise ConfigurationError(catalog.path, f"master '{entry.rotation.master}' is not in every environment "
                                     "this secret is in", secret=name, field="rotation.master")
        _check_master_not_put_by_ops(catalog.path, name, entry.rotation.master, master)


def _check_master_not_put_by_ops(path: str, name: str, master_name: str, master: Secret) -> None:
    """An admin credential (`rotation.master`) is not put with `ops put`: the first deploy rotates the credential
    at once and logs in with the master, so `pulumi up` must know the master has a value, and a value put out of
    band is one the program never sees (it would schedule a rotation that can only fail, or wait for ever)."""
    put = [k for k, v in master.values.items() if v.external is not None and v.external.put == "ops"]
    if put:
        where = f"keys.{put[0]}" if master.grouped else "value"
        raise ConfigurationError(
            path, f"'{master_name}' is the admin credential (rotation.master) of '{name}', whose first rotation "
            "at deploy logs in with it, so `pulumi up` must know its value is there: declare it `external: {}` "
            "(set with `pulumi config set --secret`), not put with `python -m ops put`",
            secret=master_name, field=f"{where}.external.put")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_shape(path: str, name: str, secret: Secret) -> None:
    if (secret.value is None) == (secret.keys is None):
        raise ConfigurationError(path, "give exactly one of 'value' (a single value) or 'keys' (a JSON secret)",
                                 secret=name, field="value" if secret.value is not None else "keys")
    if secret.keys is not None:
        if not secret.keys:
            raise ConfigurationError(path, "'keys' is empty", secret=name, field="keys")
        for key in secret.keys:
            if not KEY_NAME.fullmatch(key):
                raise ConfigurationError(path, f"key name must match {KEY_NAME.pattern}", secret=name,
                                         field=f"keys.{key}")


def _check_secret(path: str, name: str, secret: Secret, environments: tuple[str, ...]) -> None:
    _check_shape(path, name, secret)
    for key, value in secret.values.items():
        for env in value.pattern if isinstance(value.pattern, dict) else ():
            if env not in environments:
                raise ConfigurationError(
                    path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                    secret=name, field=f"{'keys.' + key if key else 'value'}.pattern",
                )
    for env in secret.environments or ():
        if env not in environments:
            raise ConfigurationError(
                path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                secret=name, field="environments",
            )
    values = secret.values
    for key, value in values.items():
        field = f"keys.{key}" if key else "value"
        if value.generate is not None and secret.class_ == "critical" and not secret.weak_reason:
            bits = value.generate.bits
            if bits < CRITICAL_MIN_BITS:
                raise ConfigurationError(
                    path,
                    f"a critical value needs at least {CRITICAL_MIN_BITS} bits of entropy; this generator "
                    f"gives {bits:.0f}. Make it longer, or set 'weak_reason' to say why not",
                    secret=name, field=f"{field}.generate",
                )
        if value.config is not None and secret.class_ == "critical" and not secret.grouped:
            # A critical secret made of one plain value would be a secret kept in plain config.
            raise ConfigurationError(
                path, "a critical single-value secret cannot come from plain config; use 'external' "
                "(pulumi config set --secret)", secret=name, field=f"{field}.config",
            )
        if value.template is not None:
            if not secret.grouped:
                raise ConfigurationError(path, "a template needs sibling keys; use 'keys'", secret=name,
                                         field=f"{field}.template")
            for ref in PLACEHOLDER_REF.findall(value.template):
                if ref not in values or ref == key:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is not another key of this secret",
                        secret=name, field=f"{field}.template",
                    )
                if values[ref].template is not None:
                    raise ConfigurationError(
                        path, f"template refers to '{ref}', which is itself a template", secret=name,
                        field=f"{field}.template",
                    )
            _check_optional_parts(path, name, secret, key, environments)
    for key, value in values.items():
        field = f"keys.{key}" if key else "value"
        if isinstance(value.required, list):
            for env in value.required:
                if env not in environments:
                    raise ConfigurationError(
                        path, f"'{env}' is not one of the catalog's environments ({', '.join(environments)})",
                        secret=name, field=f"{field}.required",
                    )
        # An environment the secret is not in: the constraint would never apply (a dev requirement on a secret
        # that dev does not have leaves it optional everywhere).
        named = {"required": value.required if isinstance(value.required, list) else [],
                 "pattern": list(value.pattern) if isinstance(value.pattern, dict) else []}
        for what, envs in named.items():
            for env in envs:
                if secret.environments is not None and env not in secret.environments:
                    raise ConfigurationError(
                        path, f"'{env}' is not an environment of this secret (environments: "
                        f"{', '.join(secret.environments)}), so this would never apply", secret=name,
                        field=f"{field}.{what}",
                    )
    _check_together(path, name, secret, environments)
    _check_writers(path, name, secret)
    if secret.rotation in ("on-compromise", "manual") and secret.class_ == "critical" and not secret.rotation_reason:
        raise ConfigurationError(
            path, f"a critical secret rotated '{secret.rotation}' needs 'rotation_reason': why no function "
            "rotates it (letters, digits, spaces and _.:/=+-@ only)", secret=name, field="rotation_reason",
        )
    _check_first_value(path, name, secret)
    _check_installed_templates(path, name, secret)
    _check_put_by_ops(path, name, secret)
    if isinstance(secret.rotation, Rotation):
        try:
            schedule.check(secret.rotation.every_days, secret.rotation.schedule, secret.rotation.window)
        except schedule.ScheduleError as exc:
            raise ConfigurationError(path, str(exc), secret=name, field=f"rotation.{exc.field}") from None
    if secret.rotate_every_days is not None and secret.rotation != "manual":
        raise ConfigurationError(
            path, "'rotate_every_days' is the period of a secret rotated by hand ('rotation: manual'); a function's "
            "schedule is 'rotation.every_days', and an on-compromise secret has no period", secret=name,
            field="rotate_every_days",
        )
    if secret.public_key is not None and not (
            isinstance(secret.rotation, Rotation) and secret.rotation.strategy == "jwt-rs256"):
        raise ConfigurationError(path, "'public_key' publishes the public half of a jwt-rs256 key pair; this secret "
                                 "is not rotated by jwt-rs256", secret=name, field="public_key")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_MASTER:
        if not secret.rotation.master:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs 'master': the catalog secret holding the "
                "admin credential that changes this password", secret=name, field="rotation.master",
            )
    if isinstance(secret.rotation, Rotation) and secret.rotation.acl is not None:
        if secret.rotation.strategy != "redis-acl":
            raise ConfigurationError(path, "'acl' sets the rules of a Redis user; only the 'redis-acl' strategy "
                                     "has one", secret=name, field="rotation.acl")
        if re.search(r"(^|\s)([<>#!]\S*|nopass|resetpass|reset|on|off)(\s|$)", secret.rotation.acl, re.IGNORECASE):
            raise ConfigurationError(path, "'acl' may not set passwords or switch the user on or off: the rotation "
                                     "function manages those", secret=name, field="rotation.acl")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in NEEDS_KEYS:
        if not secret.grouped:
            raise ConfigurationError(path, f"the '{secret.rotation.strategy}' strategy rotates a JSON secret; use "
                                     "'keys'", secret=name, field="rotation.strategy")
        missing = [k for k in NEEDS_KEYS[secret.rotation.strategy] if k not in values]
        if missing:
            raise ConfigurationError(
                path, f"the '{secret.rotation.strategy}' strategy needs the keys {', '.join(missing)}; for "
                f"example {'; '.join(f'{k}: {KEY_EXAMPLES[k]}' for k in missing if k in KEY_EXAMPLES)}",
                secret=name, field="keys",
            )
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy in SIGNING_KEY_STRATEGIES:
        if not secret.grouped:
            raise ConfigurationError(path, "a JWT signing key is a JSON secret (current and previous key); use "
                                     "'keys' with a generated 'key'", secret=name, field="rotation.strategy")
    if isinstance(secret.rotation, Rotation) and secret.rotation.strategy == "token":
        generated = [k for k, v in values.items() if v.generate is not None]
        if len(generated) != 1:
            raise ConfigurationError(
                path, "the 'token' rotation strategy needs exactly one generated value to replace "
                f"(found {len(generated)})", secret=name, field="rotation.strategy",
            )


def _check_together(path: str, name: str, secret: Secret, environments: tuple[str, ...]) -> None:
    """Each `together` group names two or more distinct supplied keys of this JSON secret, one of them optional
    somewhere (keys required everywhere are always set together: the group would mean nothing)."""
    values = secret.values if secret.grouped else {}
    for index, group in enumerate(secret.together):
        field = f"together.{index}"
        if not secret.grouped:
            raise ConfigurationError(path, "'together' groups keys of a JSON secret; use 'keys'", secret=name,
                                     field="together")
        for key in group:
            if key not in values or (values[key].external is None and values[key].config is None):
                raise ConfigurationError(path, f"'{key}' is not an external or plain config key of this secret",
                                         secret=name, field=field)
        if len(set(group)) != len(group):
            raise ConfigurationError(path, "names a key twice", secret=name, field=field)
        defaulted = [k for k in group if (source := values[k].config) is not None and source.default is not None]
        if defaulted:  # always set, so the rest of the group would be required everywhere
            raise ConfigurationError(path, f"'{defaulted[0]}' has a default, so it is always set; a group holds keys "
                                     "a stack may leave unset", secret=name, field=field)
        mine = secret.environments or environments
        if all(values[key].required_in(env) for key in group for env in mine):
            raise ConfigurationError(path, f"{', '.join(group)} are required in every environment of this secret, "
                                     "so they are always set together; drop the group", secret=name, field=field)


def _check_writers(path: str, name: str, secret: Secret) -> None:
    """An application-written value: the services that write it, each also a reader."""
    if secret.rotation != "application":
        if secret.writers:
            raise ConfigurationError(
                path, "only a value the application renews itself ('rotation: application') has writers",
                secret=name, field="writers",
            )
        return
    if not secret.writers:
        raise ConfigurationError(
            path, "'rotation: application' needs 'writers': the services that write the renewed value back",
            secret=name, field="writers",
        )
    readers_missing = sorted(set(secret.writers) - set(secret.consumers))
    if readers_missing:
        raise ConfigurationError(
            path, f"writer(s) {', '.join(readers_missing)} must also be consumers: a service writes back the "
            "value it reads", secret=name, field="writers",
        )


def _check_first_value(path: str, name: str, secret: Secret) -> None:
    """A first value made by the rotation function: only what the function writes can be declared."""
    if not isinstance(secret.rotation, Rotation) or not secret.rotation.first_value_by_rotation:
        for key, value in secret.values.items():
            if value.rotation is not None:
                raise ConfigurationError(
                    path, "a value comes from 'rotation' only in a secret whose rotation makes the first value "
                    "('rotation: {strategy: ..., first_value: rotation}')", secret=name,
                    field=f"keys.{key}.rotation" if key else "value.rotation",
                )
        return
    strategy = secret.rotation.strategy
    if strategy not in FIRST_VALUE_KEYS:
        raise ConfigurationError(
            path, f"the '{strategy}' strategy logs in with the current credential, so it cannot make the first "
            f"value; 'first_value: rotation' works with {', '.join(sorted(FIRST_VALUE_KEYS))}",
            secret=name, field="rotation.first_value",
        )
    values = secret.values
    for key, value in values.items():
        if value.source not in ("generate", "rotation"):
            field = f"keys.{key}" if key else "value"
            raise ConfigurationError(
                path, f"with 'first_value: rotation' the function writes the whole value, so a value cannot come "
                f"from {value.source}; declare the key with 'rotation: {{}}', or move it to another secret",
                secret=name, field=f"{field}.{value.source}",
            )
    keys = FIRST_VALUE_KEYS[strategy]
    if keys is None:
        others = sorted(k for k, v in values.items() if v.generate is None)
        if others:
            raise ConfigurationError(
                path, "with 'first_value: rotation' the token function writes only the generated value; "
                f"{', '.join(others)} would be missing: move them to another secret", secret=name, field="keys",
            )
        return
    if not secret.grouped:
        return  # refused as a JWT secret that is not JSON
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ConfigurationError(
            path, f"with 'first_value: rotation' the {strategy} function writes the keys {', '.join(keys)}; "
            f"{', '.join(unknown)} would be missing", secret=name, field="keys",
        )


def _check_public_keys(catalog: Catalog) -> None:
    """A published public key's secret name is free, and its verifiers are not also its signers."""

    for name, secret in catalog.secrets.items():
        if secret.public_key is None:
            continue
        derived = public_name(name)
        if derived in catalog.secrets or len(derived) > 63:
            why = "is already a secret of the catalog" if derived in catalog.secrets else "is longer than 63 characters"
            raise ConfigurationError(catalog.path, f"the public key would be published as '{derived}', which {why}",
                                     secret=name, field="public_key")
        both = sorted(set(secret.public_key.verifiers) & set(secret.consumers))
        if both:
            raise ConfigurationError(
                catalog.path, f"{', '.join(both)} read(s) the private key as consumers; a verifier reads only the "
                "public key: list it under one of 'consumers' or 'public_key.verifiers'", secret=name,
                field="public_key.verifiers",
            )


def _check_env_unique(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for name, secret in catalog.secrets.items():
        fed = [(f"keys.{key}.env" if key else "value.env", f"{name}:{key}" if key else name, value.env)
               for key, value in secret.values.items()]
        if secret.public_key is not None:  # the published JWKS and PEM feed variables of the same stacks
            fed.append(("public_key.env", f"{name}:public_key", secret.public_key.env))
            fed.append(("public_key.pem_env", f"{name}:public_key", secret.public_key.pem_env))
        for field, where, variables in fed:
            for var in variables:
                if var in seen and _share_environment(catalog, seen[var].split(":")[0], name):
                    raise ConfigurationError(
                        catalog.path, f"environment variable {var} is already fed by '{seen[var]}'",
                        secret=name, field=field,
                    )
                seen[var] = where


def _share_environment(catalog: Catalog, first: str, second: str) -> bool:
    a, b = catalog.secrets[first].environments, catalog.secrets[second].environments
    return a is None or b is None or bool(set(a) & set(b))


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file."""
    return parse_catalog(load_yaml(path), str(path))



def _check_installed_templates(path: str, name: str, secret: Secret) -> None:
    """A server credential whose password its first rotation makes: the program's first version leaves out
    every template built from the password, and the function rebuilds only `url`; any other would stay empty."""
    if not secret.needs_first_install or not isinstance(secret.rotation, Rotation) or secret.rotation.master is None:
        return
    for key, value in secret.values.items():
        if key != "url" and value.template is not None and "password" in PLACEHOLDER_REF.findall(value.template):
            raise ConfigurationError(
                path, f"the password is made by the {secret.rotation.strategy} function, which rebuilds only "
                "'url' from it; name this template 'url', or build it in the application from the keys",
                secret=name, field=f"keys.{key}.template",
            )


def _check_managed_master(path: str, name: str, rotation: Rotation) -> None:
    """An RDS-managed master logs in to PostgreSQL: only the PostgreSQL strategies can use it."""
    if rotation.strategy not in ("postgres-single-user", "postgres-alternating-users"):
        raise ConfigurationError(path, f"an RDS-managed master ('managed: rds') installs PostgreSQL passwords; "
                                 f"the '{rotation.strategy}' strategy cannot use it", secret=name,
                                 field="rotation.master")


def _check_managed_external(catalog: Catalog) -> None:
    """A managed external secret: a JSON secret with the partner's keys, on a schedule AWS accepts."""
    for name, entry in catalog.secrets.items():
        rotation = entry.rotation
        if not isinstance(rotation, ManagedExternal):
            continue
        try:
            schedule.check(rotation.every_days, rotation.schedule, rotation.window)
        except schedule.ScheduleError as exc:
            raise ConfigurationError(catalog.path, str(exc), secret=name, field=f"rotation.{exc.field}") from None
        if not entry.grouped:
            raise ConfigurationError(catalog.path, f"a {rotation.managed_external} managed external secret is a JSON "
                                     "secret; use 'keys'", secret=name, field="rotation.managed_external")
        missing = [k for k in MANAGED_EXTERNAL_KEYS.get(rotation.managed_external, ()) if k not in entry.values]
        if missing:
            raise ConfigurationError(catalog.path, f"a {rotation.managed_external} managed external secret needs the "
                                     f"keys {', '.join(missing)}", secret=name, field="keys")
        generated = [k for k, v in entry.values.items() if v.generate is not None]
        if generated:
            raise ConfigurationError(catalog.path, f"'{generated[0]}' is generated, but the partner issues every value "
                                     "of a managed external secret: supply it (external)", secret=name,
                                     field=f"keys.{generated[0]}")


def _check_put_by_ops(path: str, name: str, secret: Secret) -> None:
    """A secret whose value is put out of band holds nothing else the program writes: the program writes no version
    of it, so `pulumi up` can never write over what `ops put` wrote (a version of the other keys would, at its next
    replacement), and nothing of it passes through Pulumi. Generated keys may sit beside the put ones: the
    first-value function writes them into the empty secret at deploy (components/first_value.py), and `ops put`
    keeps them."""
    if not secret.put_by_ops:
        return
    for key, value in secret.values.items():
        if value.generate is not None:
            continue
        if value.external is None or value.external.put != "ops":
            where = f"keys.{key}" if secret.grouped else "value"
            raise ConfigurationError(
                path, "a secret put with `python -m ops put` may hold only values put the same way (external: "
                "{put: ops}) and generated ones: the program writes no version of it, so it could not write this "
                "one", secret=name, field=where)
    if secret.value_renewed:
        raise ConfigurationError(path, "a secret put with `python -m ops put` is not rotated by a function or the "
                                 "application: rotate it by putting a new value", secret=name, field="rotation")


def _always_set(secret: Secret, key: str, environments: tuple[str, ...]) -> bool:
    """Whether every stack of this secret has a value for `key`: generated, written by rotation, a plain value
    with a default, or supplied and required in each of the secret's environments."""
    value = secret.values[key]
    if value.external is None and value.config is None:
        return True
    if value.config is not None and value.config.default is not None:
        return True
    return all(value.required_in(env) for env in secret.environments or environments)


def _check_optional_parts(path: str, name: str, secret: Secret, key: str, environments: tuple[str, ...]) -> None:
    """Each key inside an optional part (`[...]`) is one some stack of this secret may leave unset: with a key
    that is always set inside it, the brackets would not say what decides whether the part is written."""
    value = secret.values[key]
    assert value.template is not None
    for part in templates.parse(value.template).optional:
        for ref in part:
            if _always_set(secret, ref, environments):
                raise ConfigurationError(
                    path, f"'{ref}' inside an optional part '[...]' has a value in every environment of this secret, "
                    "so the part is always written: move it out of the brackets, or make it optional "
                    "(required: false or required: [<environments>])", secret=name, field=f"keys.{key}.template",
                )


def first_value_fits(name: str, secret: Secret) -> bool:
    """Whether the rotation function can make this secret's whole first value: the catalog's own rule for
    `first_value: rotation` (what the function writes, and nothing else) passes."""
    try:
        _check_first_value("", name, secret)
    except ConfigurationError:
        return False
    return True
