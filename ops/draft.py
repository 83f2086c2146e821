"""`python -m ops draft`: a first catalog, and the stack config it needs, from what a team already has.

Inputs, any combination: dotenv files (`.env.example`, a `.env`; this platform's own `envExample`
output names each variable's secret and key in a `# from` comment), docker-compose files (each
service's `environment` and `secrets`), and a Secrets Manager prefix (names, descriptions, tags, KMS
key, rotation and replicas from DescribeSecret; the JSON key names of each value only with
`--read-keys`). Values are looked at only to classify them (a placeholder, a URL holding credentials);
no value is ever written, printed or logged.

What is copied is a name, never other text (ops/inputs.py states the rule): a line or entry that is not
NAME=value with a variable's name is skipped and counted by line number. What the endpoint returns is
checked by its grammar before it reaches the draft; each secret's resource policy (GetResourcePolicy) is
recorded as AWS returned it.

Heuristics, each guess marked `# review:` in the draft:
- a name containing password, secret, key or token (or a URL holding credentials) is critical and its
  value `external` (pulumi config set --secret); anything else is plain `config`;
- variables sharing a first word (REDIS_HOST, REDIS_PORT) form one JSON secret (`redis`: host, port);
- a URL with a user and password in it is a template candidate (build it from its parts);
- a placeholder value (changeme, <...>, YOUR_..._HERE) is reported, never used;
- an existing secret is adopted (`secrets-platform:adopt`): imported as it is by the first `pulumi up`.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from components.catalog import (
    ENV_VAR,
    KEY_NAME,
    RESERVED_ENV,
    RESERVED_ENV_PREFIXES,
    SECRET_NAME,
    config_key,
    load_catalog,
    load_yaml,
)
from components.errors import ConfigurationError
from components.regions import known_regions
from components.settings import PROJECT
from components.values import placeholder_problem
from ops.inputs import (
    COMPOSE_NAME,
    KEY_LIKE,
    Skipped,
    bits_per_char,
    check_target,
    is_name,
    read_input,
    shown,
    write_new,
)
from ops.stack import REPO, OpsError, check_stack_name

CONNECTION_URL = re.compile(
    r"^(DATABASE|DB|REDIS|POSTGRES(QL)?|PG|MYSQL|MONGO(DB)?|AMQP|RABBITMQ|BROKER)_(URL|URI|DSN)$"
)
"""A connection string, which usually carries a password: critical even when the file holds no value."""
CRITICAL_WORDS = re.compile(
    r"(?:^|[_-])(PASSWORD|PASSWD|PASS|PWD|PASSPHRASE|SECRET|KEY|TOKEN|PRIVATE|CREDENTIALS?|CREDS|AUTH|HASH(?:ES)?|"
    r"SALT|SIGNING|HMAC|CERT|PEM|DSN)(?:$|[_-])", re.IGNORECASE)
"""The stated heuristic: a name with password, secret, key, token (or auth, hash, salt, signing, cert,
DSN) in it names a critical value. A wrong `critical` costs a review; a wrong `configuration` puts a
value in the stack file in plain text."""
FROM_COMMENT = re.compile(
    r"^#\s*from\s+(?P<full>[A-Za-z0-9/_+=.@-]+)(?:\s+\((?P<key>[A-Za-z][A-Za-z0-9_]*)\))?\s*$"
)
"""`# from <app>/<env>/<secret> (<key>)`: the line the platform's `envExample` output puts above each variable."""
FROM_LINE = re.compile(r"^#\s*from\s")
"""A comment that means to be a `# from` line: if it does not hold names, it is skipped and counted."""
APP_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
SM_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
"""A Secrets Manager secret name (CreateSecret, Name: 1-512 of letters, digits and /_+=.@-)."""
INTERPOLATION = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*(?:[:?-][^}]*)?\}?$")
"""A compose value that is only `${VAR}` / `$VAR` / `${VAR:-default}`: taken from the host, not a value."""
CATALOG_PART = re.compile(r"[A-Za-z0-9_.-]{1,255}")
"""One part of `--catalog-path`."""
PLATFORM_KEY = "masterarn"
"""A key the platform writes into a rotated secret itself (components/environment.py), never declared."""
REASON = "drafted - say who rotates this value and how"
"""A rotation_reason the catalog accepts (letters, digits, spaces, _.:/=+@-) that a reviewer must replace."""


@dataclass
class Key:
    """One value of a drafted secret (`""` for a single value)."""

    env: list[str] = field(default_factory=list)
    critical: bool = False
    url_with_credentials: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Existing:
    """What DescribeSecret says about an existing secret (never its value)."""

    arn: str
    name: str
    description: str | None
    kms_key_id: str | None
    tags: dict[str, str]
    replicas: list[dict[str, str]]
    rotation: str | None
    """A description of the rotation configured in AWS, or None."""
    keys: list[str] | None
    """The JSON key names (only with --read-keys); None when unknown, [] for a single value."""
    resource_policy: str | None = None
    """The resource policy as GetResourcePolicy returned it (JSON text), or None when the secret has none."""


@dataclass
class Draft:
    """A secret of the draft."""

    name: str
    keys: dict[str, Key] = field(default_factory=dict)
    grouped: bool = False
    consumers: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    existing: Existing | None = None


@dataclass(frozen=True)
class Variable:
    """A variable from a dotenv or compose file: its name, where it is bound, what its value looks like."""

    name: str
    source: str
    bound: tuple[str, str] | None = None
    """(secret, key) from a `# from` comment."""
    app: str | None = None
    looks: str = "empty"
    """empty, placeholder, url-with-credentials, set: a description of the value, never the value."""
    services: tuple[str, ...] = ()


def _looks(value: str | None) -> str:
    if not value:
        return "empty"
    if placeholder_problem(value, "configuration"):
        return "placeholder"
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme and parsed.netloc and parsed.password:
        return "url-with-credentials"
    words = re.split(r"[\s,;\"':{}\[\]]+", value)
    if KEY_LIKE.search(value) or any(len(word) >= 20 and bits_per_char(word) >= 4.0 for word in words):
        return "key-like"
    return "set"


def _from_comment(comment: str) -> tuple[str, str, str | None] | None:
    """(secret, key, app) of a `# from` line, or None unless every part copied is a name."""
    match = FROM_COMMENT.fullmatch(comment)
    if not match:
        return None
    parts = match.group("full").split("/")
    secret, key = parts[-1], match.group("key") or ""
    app = parts[0] if len(parts) == 3 else None
    if not is_name(secret, SM_NAME) or (key and not is_name(key, KEY_NAME)):
        return None
    if app is not None and not is_name(app, APP_NAME):
        return None
    return secret, key, app


def read_dotenv(path: Path, skipped: Skipped | None = None) -> list[Variable]:
    """Variables of a dotenv file (python-dotenv's parser), with the secret a `# from` comment names.

    Only NAME=value lines with a variable's name count; any other line (a pasted token, a malformed
    line, a quoted key with a newline in it, a `# from` comment that names no secret) is skipped and
    counted, never copied.
    """
    from dotenv.parser import parse_stream

    skipped = skipped if skipped is not None else Skipped()
    text = read_input(path, "env file")
    found: list[Variable] = []
    pending: tuple[str, str, str | None] | None = None
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # A binding's text starts with the blank lines before it: count them to name the line itself.
        line = binding.original.line + len(original) - len(original.lstrip("\n"))
        if binding.error:
            skipped.add(path, line)
            pending = None
            continue
        if binding.key is None:
            comment = original.strip()
            if FROM_LINE.match(comment):
                pending = _from_comment(comment)
                if pending is None:
                    skipped.add(path, line)
            elif comment == "":
                pending = None
            continue
        if original.startswith("\n"):
            pending = None  # a blank line ends what a comment says
        if binding.value is None or not is_name(binding.key):
            # No `=` (a token pasted on a line of its own) or not a variable's name: never copied.
            skipped.add(path, line)
            pending = None
            continue
        bound = (pending[0], pending[1]) if pending else None
        found.append(Variable(binding.key, shown(path), bound, pending[2] if pending else None, _looks(binding.value)))
        pending = None
    return found


def read_compose(path: Path, skipped: Skipped | None = None) -> tuple[list[Variable], dict[str, set[str]]]:
    """Each service's `environment` variables, and the compose `secrets` each service mounts.

    A service, variable or secret whose name is not a name (a mapping inside the `environment` list, a
    token) is skipped and counted, never copied; a field of the wrong type is refused by its path.
    """
    skipped = skipped if skipped is not None else Skipped()
    read_input(path, "compose file")  # a regular file of bounded size, before the YAML loader opens it
    try:
        document = load_yaml(path)
    except ConfigurationError as exc:
        # The loader quotes a duplicate key or an unknown tag: text of the file, which may be a token.
        message = str(exc)
        head = str(path) if message.startswith(str(path)) else ""
        raise OpsError(head + re.sub(r"'[^'\n]*'", "'...'", message[len(head):])) from None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise OpsError(f"{path}, field 'services': a compose file maps service names to their settings")
    found: list[Variable] = []
    mounted: dict[str, set[str]] = {}
    for service, spec in services.items():
        if not is_name(service, COMPOSE_NAME):
            skipped.add(path)
            continue
        if not isinstance(spec, dict):
            raise OpsError(f"{path}, field 'services.{service}': must be a mapping")
        consumer = _slug(str(service), 32)
        environment = spec.get("environment") or {}
        pairs: list[tuple[str, str | None]] = []
        if isinstance(environment, list):
            for item in environment:
                name, equals, value = item.partition("=") if isinstance(item, str) else ("", "", "")
                if not is_name(name):
                    skipped.add(path)  # `- API_KEY: ...` is a mapping, not `NAME=value`: never copied
                    continue
                pairs.append((name, value if equals else None))
        elif isinstance(environment, dict):
            for name, value in environment.items():
                if not is_name(name):
                    skipped.add(path)
                    continue
                pairs.append((name, None if value is None or isinstance(value, dict | list) else str(value)))
        else:
            raise OpsError(f"{path}, field 'services.{service}.environment': must be a list or a mapping")
        for name, text in pairs:
            looks = "empty" if not text or INTERPOLATION.fullmatch(text) else _looks(text)
            found.append(Variable(name, shown(path), looks=looks, services=(consumer,)))
        mounts = spec.get("secrets") or []
        if not isinstance(mounts, list):
            raise OpsError(f"{path}, field 'services.{service}.secrets': must be a list of secret names")
        for item in mounts:
            secret = item.get("source") if isinstance(item, dict) else item
            if is_name(secret, COMPOSE_NAME):
                mounted.setdefault(str(secret), set()).add(consumer)
            else:
                skipped.add(path)
    return found, mounted


LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9$_-]+)?")
SCHEDULE = re.compile(r"(?:rate|cron)\([A-Za-z0-9 ,*?/#LW-]{1,200}\)")
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}")
RESOURCE_POLICY_MAX = 20480
"""Longest resource policy Secrets Manager stores (PutResourcePolicy, ResourcePolicy: 1-20,480 characters)."""


def read_aws(client: Any, prefix: str, read_keys: bool) -> list[Existing]:
    """Every secret under a name prefix, as DescribeSecret has it; key names only when asked.

    What the endpoint returns goes into the draft only after it is checked: names and ARNs of their
    grammar, a rotation function's ARN and schedule, a resource policy that is JSON. Anything else ends
    the draft with one line that does not quote it.
    """
    from ops.aws import call, pages

    found: list[Existing] = []
    # ListSecrets' `name` filter matches a prefix, case-insensitively (ListSecrets, Filter): check it exactly.
    listed = [s for page in pages(f"prefix '{prefix}'", client.list_secrets, MaxResults=100,
                                  Filters=[{"Key": "name", "Values": [prefix]}])
              for s in page.get("SecretList") or []]
    for number, summary in enumerate(listed, 1):
        # A full name is long and varied: its grammar is checked, not its entropy (that is for names in files).
        if not isinstance(summary, dict) or not isinstance(summary.get("Name"), str) \
                or not SM_NAME.fullmatch(summary["Name"]) \
                or not SECRET_ARN.fullmatch(str(summary.get("ARN"))):
            raise OpsError(f"prefix '{prefix}': ListSecrets entry {number} has no valid Name and ARN (a Secrets "
                           "Manager name is 1-512 of letters, digits and /_+=.@-); refusing to draft from it")
    for summary in sorted(listed, key=lambda s: s["Name"]):
        if not summary["Name"].startswith(prefix):
            continue
        name = summary["Name"]
        described = call(f"secret '{name}'", client.describe_secret, SecretId=summary["ARN"])
        _check_described(name, described)
        primary = described.get("PrimaryRegion")
        if primary and primary != client.meta.region_name:
            continue  # a replica: it is adopted with its primary secret, in the primary's region
        rotation = None
        if described.get("RotationEnabled"):
            rules = described.get("RotationRules") or {}
            every = rules.get("ScheduleExpression") or (f"every {rules.get('AutomaticallyAfterDays')} days")
            rotation = f"rotated in AWS by {described.get('RotationLambdaARN', 'a function')} ({every})"
        keys: list[str] | None = None
        if read_keys:
            keys = _key_names(client, described)
        policy = call(f"secret '{name}'", client.get_resource_policy, SecretId=described["ARN"]).get("ResourcePolicy")
        if policy is not None and not _is_policy(policy):
            raise OpsError(f"secret '{name}', field 'ResourcePolicy': GetResourcePolicy returned text that is not a "
                           f"JSON policy of at most {RESOURCE_POLICY_MAX:,} characters")
        found.append(Existing(
            arn=described["ARN"], name=described["Name"], description=described.get("Description"),
            kms_key_id=described.get("KmsKeyId"),
            # AWS's own `aws:` tags cannot be set, and the provider leaves them out of its state (tftags
            # IgnoreAWS): declaring them would make the import differ.
            tags={t["Key"]: t["Value"] for t in described.get("Tags") or [] if not t["Key"].startswith("aws:")},
            replicas=[{"region": r["Region"], **({"kmsKeyId": r["KmsKeyId"]} if r.get("KmsKeyId") else {})}
                      for r in described.get("ReplicationStatus") or []],
            rotation=rotation, keys=keys, resource_policy=policy,
        ))
    return found


def _is_policy(policy: object) -> bool:
    if not isinstance(policy, str) or not 0 < len(policy) <= RESOURCE_POLICY_MAX:
        return False
    try:
        return isinstance(json.loads(policy), dict)
    except ValueError:
        return False


def _check_described(name: str, described: Any) -> None:
    """DescribeSecret's answer, checked field by field before any of it reaches the draft (never quoted)."""
    def bad(field_name: str) -> OpsError:
        return OpsError(f"secret '{name}', field '{field_name}': DescribeSecret returned a value of the wrong shape; "
                        "refusing to draft from it")

    if not isinstance(described, dict):
        raise bad("DescribeSecret")
    if described.get("Name") != name:
        raise bad("Name")
    if not SECRET_ARN.fullmatch(str(described.get("ARN"))):
        raise bad("ARN")
    for key in ("Description", "KmsKeyId", "PrimaryRegion"):
        if described.get(key) is not None and not isinstance(described[key], str):
            raise bad(key)
    tags = described.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) and isinstance(t.get("Key"), str)
                                             and isinstance(t.get("Value"), str) for t in tags):
        raise bad("Tags")
    replicas = described.get("ReplicationStatus") or []
    if not isinstance(replicas, list) or not all(isinstance(r, dict) and isinstance(r.get("Region"), str)
                                                 for r in replicas):
        raise bad("ReplicationStatus")
    if described.get("RotationEnabled"):
        function = described.get("RotationLambdaARN")
        if function is not None and not LAMBDA_ARN.fullmatch(str(function)):
            raise bad("RotationLambdaARN")
        rules = described.get("RotationRules") or {}
        if not isinstance(rules, dict):
            raise bad("RotationRules")
        schedule, days = rules.get("ScheduleExpression"), rules.get("AutomaticallyAfterDays")
        if schedule is not None and not SCHEDULE.fullmatch(str(schedule)):
            raise bad("RotationRules.ScheduleExpression")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
            raise bad("RotationRules.AutomaticallyAfterDays")
    stages = described.get("VersionIdsToStages") or {}
    if not isinstance(stages, dict) or not all(isinstance(v, list) for v in stages.values()):
        raise bad("VersionIdsToStages")


def _key_names(client: Any, described: dict[str, Any]) -> list[str] | None:
    """The JSON key names of the current value; the value itself is dropped at once, never kept or shown."""
    from ops.aws import call

    if not any("AWSCURRENT" in stages for stages in (described.get("VersionIdsToStages") or {}).values()):
        return None  # no value yet
    response = call(f"secret '{described['Name']}'", client.get_secret_value, SecretId=described["ARN"],
                    VersionStage="AWSCURRENT")
    text = response.get("SecretString") if isinstance(response, dict) else None
    del response
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        document = None
    del text
    return [str(k) for k in document] if isinstance(document, dict) else []


def _slug(text: str, limit: int = 63) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"s-{slug}".strip("-")
    return slug[:limit].rstrip("-")


def _camel(text: str) -> str:
    """A catalog key name (KEY_NAME: a letter first) from the rest of a variable's name."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]
    if not words:
        return "value"
    head, *rest = words
    key = head.lower() + "".join(w[:1].upper() + w[1:].lower() for w in rest)
    return key[:64] if key[0].isalpha() else f"k{key}"[:64]


def _upper_snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).replace("-", "_").upper()


@dataclass
class Request:
    """What the user asked for."""

    stack: str
    environment: str
    app: str | None
    owner: str | None
    """None: the draft writes `platform` and marks it for review."""
    region: str | None
    account_id: str | None
    catalog_path: str
    out_dir: Path
    env_files: list[Path]
    compose_files: list[Path]
    prefix: str | None
    read_keys: bool
    force: bool


def build(request: Request, variables: list[Variable], mounted: dict[str, set[str]],
          existing: list[Existing]) -> tuple[str | None, dict[str, Draft]]:
    """The drafted secrets by catalog name, in order of first appearance, and the app's name if known.

    Linear in the number of variables: where each variable went is kept in one index (`placed`), never
    searched for.
    """
    drafts: dict[str, Draft] = {}
    placed: dict[str, tuple[str, str]] = {}
    """Variable -> (secret, key) it feeds."""
    app = request.app
    prefix = request.prefix or ""
    for secret in existing:
        rest = (secret.name[len(prefix):] if secret.name.startswith(prefix) else secret.name).lstrip("/")
        name = rest if SECRET_NAME.fullmatch(rest) else _slug(rest)
        draft = drafts.setdefault(name, Draft(name))
        if name != rest:
            draft.notes.append(f"named '{name}' after the existing '{secret.name}' (not a catalog name)")
        draft.existing = secret
        if secret.keys is None:
            draft.notes.append("the JSON keys are unknown: run the draft with --read-keys (it reads key names "
                               "only), or declare them; the value is not needed for the import")
        elif secret.keys:
            draft.grouped = True
            odd = 0
            for key in secret.keys:
                if key == PLATFORM_KEY:
                    draft.notes.append(f"'{PLATFORM_KEY}' (the rotation's admin secret) is added by the platform "
                                       "itself: name that secret in rotation.master")
                elif is_name(key, KEY_NAME):
                    draft.keys.setdefault(key, Key())
                else:
                    odd += 1
            if odd:
                # A key of a value is not shown: it may be a value itself.
                draft.notes.append(f"{odd} JSON key(s) of the value are not catalog key names ({KEY_NAME.pattern}) "
                                   "and are not shown; the consumers' valueFrom names them, so rename them in the "
                                   "application first")
        if secret.rotation:
            draft.notes.append(f"{secret.rotation}: adopted as 'manual'; turn rotation on in the follow-up step")
    if app is None and prefix.count("/") >= 1:
        app = prefix.split("/")[0] or None
    matches = _existing_index(drafts)

    unbound: list[Variable] = []
    for var in variables:
        app = app or var.app
        target = var.bound or matches.get(var.name)
        if target is None:
            unbound.append(var)
            continue
        _bind(drafts, target, var, placed)
    # A variable another input already placed (a compose file repeating a dotenv file) goes to the same place.
    still: list[Variable] = []
    for var in unbound:
        if var.name in placed:
            _bind(drafts, placed[var.name], var, placed)
        else:
            still.append(var)
    # Unbound variables: a first word shared by several forms one JSON secret.
    words: dict[str, set[str]] = {}
    for var in still:
        words.setdefault(var.name.split("_")[0], set()).add(var.name)
    notes: dict[str, str] = {}
    for first, group in words.items():
        if len(group) > 1:
            shown = sorted(group)
            more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
            notes[first] = (f"{', '.join(shown[:5])}{more} share the first word {first}: grouped into one JSON "
                            "secret")
    targets: dict[str, tuple[str, str]] = {}
    for var in still:
        if var.name in targets:
            _bind(drafts, targets[var.name], var, placed)  # the same variable in another service or file
            continue
        first = var.name.split("_")[0]
        note = notes.get(first, "") if "_" in var.name else ""
        target = (_slug(first), _camel(var.name[len(first) + 1:])) if note else (_slug(var.name), "")
        targets[var.name] = target
        draft = _bind(drafts, target, var, placed)
        if note and note not in draft.notes:
            draft.notes.append(note)
    for secret_name, services in mounted.items():
        name = _slug(secret_name)
        draft = drafts.setdefault(name, Draft(name))
        draft.consumers |= services
        draft.keys.setdefault("", Key())
        draft.notes.append(f"compose mounts it as the file /run/secrets/{secret_name}; the catalog feeds "
                           "environment variables: add 'env' with the variable the application reads")
    for draft in drafts.values():
        if not draft.keys:
            draft.keys[""] = Key()
        if draft.grouped and "" in draft.keys and len(draft.keys) > 1:
            single = draft.keys.pop("")
            draft.keys.setdefault("value", single)
        if not draft.grouped and len([k for k in draft.keys if k]) > 0:
            draft.grouped = True
            if "" in draft.keys:
                draft.keys["value"] = draft.keys.pop("")
    return app, drafts


def _existing_index(drafts: dict[str, Draft]) -> dict[str, tuple[str, str]]:
    """Variable -> the existing secret's key it names: `<SECRET>_<KEY>`, the key itself, or `<SECRET>`
    (the first secret, in order, that a variable names wins)."""
    index: dict[str, tuple[str, str]] = {}
    for name, draft in drafts.items():
        if draft.existing is None:
            continue
        for key in draft.keys:
            if key:
                index.setdefault(key, (name, key))
                index.setdefault(f"{_upper_snake(name)}_{_upper_snake(key)}", (name, key))
        if not draft.grouped:
            index.setdefault(_upper_snake(name), (name, ""))
    return index


def _bind(drafts: dict[str, Draft], target: tuple[str, str], var: Variable,
          placed: dict[str, tuple[str, str]]) -> Draft:
    name, key = target
    if not SECRET_NAME.fullmatch(name):
        name = _slug(name)
    draft = drafts.setdefault(name, Draft(name))
    if key:
        draft.grouped = True
    value = draft.keys.setdefault(key, Key())
    draft.consumers.update(var.services)
    if not ENV_VAR.fullmatch(var.name) or var.name in RESERVED_ENV or var.name.startswith(RESERVED_ENV_PREFIXES):
        value.notes.append(f"{var.source} sets {var.name}, which a catalog variable cannot be (UPPER_SNAKE_CASE, "
                           "not one the runtime or the AWS SDK reads): rename it in the application")
    elif var.name not in placed:
        value.env.append(var.name)
        placed[var.name] = (name, key)
    value.critical = value.critical or bool(CRITICAL_WORDS.search(var.name))
    if CONNECTION_URL.fullmatch(var.name) and not value.critical:
        value.critical = True
        value.notes.append(f"{var.name} names a connection string, which usually holds a password: critical")
    if var.looks == "placeholder":
        value.notes.append(f"{var.source} holds a placeholder for {var.name}, not a value: the real one is set "
                           "per stack")
    elif var.looks == "url-with-credentials":
        value.critical = value.url_with_credentials = True
    elif var.looks == "key-like" and not value.critical:
        value.critical = True
        value.notes.append(f"{var.source} holds a value for {var.name} that looks like a key, hash or token: critical")
    return draft


def render_catalog(request: Request, app: str, drafts: dict[str, Draft], sources: list[str]) -> tuple[str, int]:
    """The draft catalog as YAML text with `# review:` comments, and the number of review marks."""
    reviews = 0
    lines = [
        "# Drafted by `python -m ops draft` from: " + "; ".join(sources),
        "# Every guess is marked `# review:`. Heuristics: a name with password, secret, key, token, auth, hash,",
        "# ... (or a URL holding credentials, or a value that looks like a key or hash) is critical and `external`",
        "# (pulumi config set --secret); anything else is plain",
        "# `config`; variables sharing a first word form one JSON secret. No value was read into this file.",
        f"app: {app}",
        f"owner: {_scalar(request.owner or 'platform')}" + ("" if request.owner else "   # review: the owning team"),
    ]
    reviews += 0 if request.owner else 1
    environments = ["production", "staging"]
    if request.environment not in environments:
        environments.append(request.environment)
    lines.append(f"environments: [{', '.join(environments)}]")
    lines.append("secrets:")
    for draft in drafts.values():
        lines.append(f"  {draft.name}:")
        existing = draft.existing
        tags = existing.tags if existing else {}
        critical = any(k.critical for k in draft.keys.values()) or bool(CRITICAL_WORDS.search(draft.name))
        if tags.get("class") in ("critical", "configuration"):
            critical = tags["class"] == "critical"
            klass_note = "from its 'class' tag"
        else:
            klass_note = "critical: its name or value says it is secret material" if critical else \
                "configuration: neither its name nor its value looks secret"
        notes = [*draft.notes, f"class {klass_note}"]
        if existing:
            notes.append(f"adopts {existing.name}: the first `pulumi up` imports it as it is, value and ARN unchanged")
        for note in notes:
            lines.append(f"    # review: {note}")
            reviews += 1
        description = existing.description if existing and existing.description else None
        if description is None:
            lines.append("    # review: say what this secret is for and who uses it")
            reviews += 1
            description = f"{draft.name} (drafted)"
        lines.append(f"    description: {_scalar(description[:2048])}")
        lines.append(f"    class: {'critical' if critical else 'configuration'}")
        owner = tags.get("owner")
        if owner and owner != (request.owner or "platform") and re.fullmatch(r"[\w\s.:/=+\-@]{1,256}", owner):
            lines.append(f"    owner: {_scalar(owner)}")
        lines.append("    rotation: manual")
        if critical:
            lines.append(f"    rotation_reason: {REASON}   # review: who rotates it, how")
            reviews += 1
        if draft.consumers:
            lines.append(f"    consumers: [{', '.join(sorted(draft.consumers))}]")
        else:
            lines.append("    # review: which services read it (consumers: [...]) to get a read policy each")
            reviews += 1
        if draft.grouped:
            lines.append("    keys:")
            for key, value in draft.keys.items():
                lines.append(f"      {key}:")
                reviews += _value_lines(lines, "        ", value, critical)
        else:
            lines.append("    value:")
            reviews += _value_lines(lines, "      ", draft.keys[""], critical, single=True)
    return "\n".join(lines) + "\n", reviews


def _value_lines(lines: list[str], indent: str, value: Key, critical: bool, single: bool = False) -> int:
    reviews = 0
    for note in value.notes:
        lines.append(f"{indent}# review: {note}")
        reviews += 1
    if value.url_with_credentials:
        lines.append(f"{indent}# review: a URL holding credentials: a template candidate (keys username, "
                     "password, host, port and template: \"scheme://{username}:{password}@{host}:{port}/...\")")
        reviews += 1
    if value.env:
        lines.append(f"{indent}env: [{', '.join(value.env)}]")
    # A critical single value cannot be plain config (the catalog refuses it).
    external = value.critical or value.url_with_credentials or (single and critical)
    if external:
        lines.append(f"{indent}external: {{}}")
    else:
        lines.append(f"{indent}config: {{}}   # review: plain, non-secret stack config; `external` if it is secret")
        reviews += 1
    return reviews


def _scalar(text: str) -> str:
    """A YAML scalar for any text: a JSON string is a valid YAML double-quoted scalar."""
    return json.dumps(text)


def render_stack_config(request: Request, drafts: dict[str, Draft], account_id: str | None,
                        region: str | None) -> str:
    """The stack config entries the draft needs: region, account, catalog path and the adoptions."""
    config: dict[str, Any] = {}
    if region:
        config["aws:region"] = region
    config[f"{PROJECT}:catalog"] = request.catalog_path
    if account_id:
        config[f"{PROJECT}:accountId"] = account_id
    if request.environment != request.stack:
        config[f"{PROJECT}:environment"] = request.environment
    if "production" in (request.stack, request.environment):
        # What the production policy config requires of every secret the stack creates.
        config[f"{PROJECT}:protectSecrets"] = True
        config[f"{PROJECT}:recoveryWindowDays"] = 30
    adopt = {}
    for draft in drafts.values():
        secret = draft.existing
        if secret is None:
            continue
        entry: dict[str, Any] = {"arn": secret.arn, "name": secret.name}
        if secret.description is not None:
            entry["description"] = secret.description
        if secret.kms_key_id is not None:
            entry["kmsKeyId"] = secret.kms_key_id
        if secret.tags:
            entry["tags"] = dict(secret.tags)
        if secret.replicas:
            entry["replicas"] = secret.replicas
        if secret.resource_policy is not None:
            # As AWS returned it: the import compares it with what GetResourcePolicy says.
            entry["resourcePolicy"] = secret.resource_policy
        adopt[draft.name] = entry
    if adopt:
        config[f"{PROJECT}:adopt"] = adopt
    header = [
        f"# Stack config drafted by `python -m ops draft` for stack {request.stack}. No value is in it.",
        "# secrets-platform:adopt lists the existing secrets the first `pulumi up` imports, each exactly as",
        "# DescribeSecret returned it (an input that differs would fail the import or change the secret).",
    ]
    if not account_id:
        header.append("# review: set secrets-platform:accountId (the 12-digit account this stack deploys to)")
    if not region:
        header.append("# review: set aws:region")
    return "\n".join(header) + "\n" + yaml.safe_dump({"config": config}, sort_keys=False, allow_unicode=False,
                                                    width=1_000_000)


def run(request: Request, client: Any | None, out: TextIO) -> int:
    """Read the inputs, write the draft, and say what to do next (never a value)."""
    variables: list[Variable] = []
    mounted: dict[str, set[str]] = {}
    sources: list[str] = []
    skipped = Skipped()
    for path in request.env_files:
        variables += read_dotenv(path, skipped)
        sources.append(shown(path))
    for path in request.compose_files:
        found, mounts = read_compose(path, skipped)
        variables += found
        for name, services in mounts.items():
            mounted.setdefault(name, set()).update(services)
        sources.append(shown(path))
    existing: list[Existing] = []
    if request.prefix is not None:
        existing = read_aws(client, request.prefix, request.read_keys)
        sources.append(f"Secrets Manager {shown(request.prefix)}* in {request.region}"
                       + (" (key names read)" if request.read_keys else ""))
        if not existing:
            raise OpsError(f"no secret in {request.region} has a name starting '{request.prefix}'")
    if not sources:
        raise OpsError("nothing to draft from: give --env-file, --compose or --from-aws")
    app, drafts = build(request, variables, mounted, existing)
    if not drafts:
        raise OpsError(f"no variable or secret found in {', '.join(sources)}")
    if app is None or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", app):
        raise OpsError("the application's name is unknown: give --app (lowercase letters, digits and '-')")
    account = request.account_id or next((d.existing.arn.split(":")[4] for d in drafts.values() if d.existing), None)
    region = request.region if request.region in known_regions() else None

    catalog_text, reviews = render_catalog(request, app, drafts, sources)
    stack_text = render_stack_config(request, drafts, account, region)
    catalog_file, stack_file = _write(request, catalog_text, stack_text)

    adopted = sum(1 for d in drafts.values() if d.existing)
    out.write(f"Drafted {len(drafts)} secret(s) of {app} ({adopted} adopted) from {'; '.join(sources)}\n")
    out.write(f"  {catalog_file}  ({reviews} '# review:' marks)\n  {stack_file}\n")
    for line in skipped.lines():
        out.write(f"  {line}\n")
    try:
        catalog = load_catalog(catalog_file)
    except ConfigurationError as exc:
        out.write(f"The draft does not load yet; fix this, then preview:\n  {exc}\n")
        return 0
    plain: list[str] = []
    external: list[str] = []
    adopted_names = {d.name for d in drafts.values() if d.existing}
    for name, entry in catalog.secrets.items():
        if name in adopted_names:
            continue  # adopted: the value stays in AWS
        for key, value in entry.values.items():
            source = value.config or value.external
            if source is None:
                continue
            ckey = config_key(name, key, source.config)
            (plain if value.config is not None else external).append(ckey)
    steps = ["review every '# review:' mark in the catalog"]
    if plain:
        steps.append("set the plain values the preview needs:" + "".join(
            f"\n       pulumi config set {PROJECT}:{k} <value> --stack {request.stack}" for k in plain))
    steps.append(f"preview: python -m preview {request.stack} --project-dir {request.out_dir}")
    if external:
        steps.append("set the secret values that are not adopted (the preview lists them as action required):"
                     + "".join(f"\n       pulumi config set --secret {PROJECT}:{k} --stack {request.stack}"
                               for k in external))
    if adopted:
        steps.append("pulumi up imports the adopted secrets; then the follow-up step (README: Adopt an existing "
                     "application)")
    out.write("Next:\n" + "".join(f"  {n}. {step}\n" for n, step in enumerate(steps, 1)))
    return 0


def _write(request: Request, catalog_text: str, stack_text: str) -> tuple[Path, Path]:
    """Write the draft inside --out: every target checked first (nothing half-written), none through a link."""
    out_dir = request.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise OpsError(f"--out: {shown(out_dir)} exists and is not a directory")
    project_file = out_dir / "Pulumi.yaml"
    catalog_file = out_dir / request.catalog_path
    stack_file = out_dir / f"Pulumi.{request.stack}.yaml"
    if catalog_file == stack_file or catalog_file == project_file:
        raise OpsError(f"--catalog-path: '{request.catalog_path}' is the name of another file of the draft")
    for path in (catalog_file, stack_file):
        check_target(out_dir, path, request.force)
    new_project = not project_file.exists() and not project_file.is_symlink()
    if not new_project and (project_file.is_symlink() or not project_file.is_file()):
        raise OpsError(f"{project_file}: is not a regular file (a symbolic link?); remove it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        catalog_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsError(f"--out: cannot make the directory {shown(out_dir)} ({exc.strerror})") from None
    check_target(out_dir, catalog_file, request.force)  # again, now that its directories exist
    if new_project:
        # The directory previews as it is: `python -m preview <stack> --project-dir <out>`.
        write_new(project_file, (REPO / "Pulumi.yaml").read_text(encoding="utf-8"), force=False)
    write_new(catalog_file, catalog_text, request.force)
    write_new(stack_file, stack_text, request.force)
    return catalog_file, stack_file


def secretsmanager(region: str | None, endpoint_url: str | None) -> Any:
    """A Secrets Manager client in the region the prefix lives in (`--endpoint-url` / AWS_ENDPOINT_URL for tests)."""
    from botocore.exceptions import BotoCoreError

    from ops.aws import make_client

    if region is None or region not in known_regions():
        raise OpsError(f"--region: '{shown(region)}' is not a region of the aws partition where Secrets Manager runs"
                       if region else "--from-aws needs --region: the region the existing secrets are in")
    try:
        return make_client(region, endpoint_url)
    except (ValueError, BotoCoreError) as exc:
        raise OpsError(f"cannot make a Secrets Manager client: {exc}") from None


def add_parser(commands: Any) -> None:
    """The `draft` subcommand's arguments."""
    draft = commands.add_parser("draft", help="draft a catalog and stack config from dotenv, compose files and "
                                "existing secrets (never values)")
    draft.add_argument("--stack", required=True, help="the stack the config is drafted for (Pulumi.<stack>.yaml)")
    draft.add_argument("--environment", default=None,
                       help="environment segment of names (default: the prefix's second segment, else the stack)")
    draft.add_argument("--app", default=None, help="application name (default: from the prefix or `# from` comments)")
    draft.add_argument("--owner", default=None, help="owning team (tag)")
    draft.add_argument("--env-file", type=Path, action="append", default=[], help="a dotenv file (repeatable)")
    draft.add_argument("--compose", type=Path, action="append", default=[], help="a docker-compose file (repeatable)")
    draft.add_argument("--from-aws", dest="prefix", default=None, metavar="PREFIX",
                       help="existing Secrets Manager secrets whose names start with PREFIX (e.g. filot/production/)")
    draft.add_argument("--read-keys", action="store_true",
                       help="read each existing value to learn its JSON key names (the value is never kept or shown)")
    draft.add_argument("--region", default=None, help="region of the existing secrets (and the stack)")
    draft.add_argument("--account-id", default=None, help="12-digit account (default: from the existing secrets' ARNs)")
    draft.add_argument("--endpoint-url", default=None, help=argparse.SUPPRESS)
    draft.add_argument("--out", type=Path, required=True, help="directory the draft is written to")
    draft.add_argument("--catalog-path", default="catalog.yaml", help="catalog file name inside --out")
    draft.add_argument("--force", action="store_true", help="overwrite an earlier draft")


def main(args: Any, out: TextIO) -> int:
    """`python -m ops draft ...`."""
    if args.account_id is not None and not re.fullmatch(r"[0-9]{12}", args.account_id):
        raise OpsError(f"--account-id: '{shown(args.account_id)}' is not a 12-digit AWS account id")
    if args.app is not None and not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", args.app):
        raise OpsError(f"--app: '{shown(args.app)}' must be lowercase letters, digits and '-' (at most 32)")
    check_stack_name(args.stack)
    catalog_path = Path(args.catalog_path)
    if not args.catalog_path or catalog_path.is_absolute() or not all(
            CATALOG_PART.fullmatch(part) and part not in (".", "..") for part in args.catalog_path.split("/")):
        raise OpsError(f"--catalog-path: {json.dumps(args.catalog_path)} must be a file path inside --out (names "
                       "of letters, digits and _.- separated by '/')")
    prefix = args.prefix
    if prefix is not None and not SM_NAME.fullmatch(prefix):
        raise OpsError(f"--from-aws: {json.dumps(prefix)} is not the start of a Secrets Manager name (letters, digits "
                       "and /_+=.@-)")
    environment = args.environment
    if environment is None and prefix and prefix.count("/") >= 2:
        environment = prefix.split("/")[1]
    environment = environment or args.stack
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", environment):
        raise OpsError(f"--environment: '{shown(environment)}' must be lowercase letters, digits and '-'")
    client = secretsmanager(args.region, args.endpoint_url) if prefix is not None else None
    request = Request(
        stack=args.stack, environment=environment, app=args.app, owner=args.owner, region=args.region,
        account_id=args.account_id, catalog_path=args.catalog_path, out_dir=args.out, env_files=args.env_file,
        compose_files=args.compose, prefix=prefix, read_keys=args.read_keys, force=args.force,
    )
    return run(request, client, out)
