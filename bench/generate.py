"""Generated catalogs and stack configs of any size for the benchmark.

Secret i is, by i % 3:
  0  critical, rotated (strategy token, every_days 30): one generated value, alone or in a JSON
     secret with plain config keys and a template;
  1  critical, `rotation: on-compromise` with a `rotation_reason`: an external value (a `secure:`
     stack config entry the preview replaces with a stand-in), or a JSON secret with a generated
     password, a plain host and a URL template;
  2  class configuration (rotation manual): a plain stack config value, or a JSON secret of plain
     values (catalog defaults) and a generated UUID.
Single-value and JSON (grouped) secrets alternate within each kind. The rotated third is split by
the program into rotation functions of 25 secrets each (`token`, `token-2`, ...).

Each secret has one consumer. Consumers are services `service-000`, `service-001`, ... each reading a
contiguous block of at most SECRETS_PER_SERVICE secrets (every kind mixed in a block), and each has a
role in the stack config's `principals.services`: a service's read policy lists its secrets by ARN and
IAM refuses a policy over 6,144 characters (about 60 secrets), so a large catalog needs many services.

`cdk_catalog` is a second shape, the one compared with AWS CDK + cdk-nag (a typical CDK
secrets app), previewed as stack `staging` (so `policies/config/staging.json` applies): secret i is,
by i % 3,
  0  a JSON database credential: four plain keys (username, host, port, dbname) and a generated
     password (CDK's `generateSecretString` with a `secretStringTemplate`), not rotated by a function;
  1  rotated by `token` every 90 days (one generated value);
  2  a single generated value, not rotated.
No consumers: one runtime role reads them all (the `<app>/<env>/*` read policy).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
STACK = "bench-staging"
ENVIRONMENT = "staging"
"""The stack is `bench-staging` (no policy config file: the pack's own enforcement levels apply); its
environment segment is `staging`."""
APP = "benchapp"
PROJECT = "secrets-platform"
ACCOUNT = "123456789012"
SECRETS_PER_SERVICE = 40
"""Secrets one service reads: well within a read policy's size limit (about 60)."""
MIN_SERVICES = 2


def secret_name(i: int) -> str:
    return f"svc-{i:05d}"


def _env(i: int, key: str) -> str:
    return f"SVC_{i:05d}_{key.upper()}"


def _camel(secret: str, key: str) -> str:
    words = re.split(r"[-_]", f"{secret}-{key}" if key else secret)
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:] if w)


def service_count(size: int) -> int:
    """How many consumer services a catalog of `size` secrets spreads its secrets over."""
    return max(MIN_SERVICES, -(-size // SECRETS_PER_SERVICE))


def service_name(index: int) -> str:
    return f"service-{index:03d}"


def consumer(i: int, size: int) -> str:
    """The service reading secret i: contiguous blocks of at most SECRETS_PER_SERVICE secrets."""
    block = -(-size // service_count(size))
    return service_name(i // block)


def catalog(size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The catalog document and the stack config entries it needs (`secure:` ones for external values)."""
    secrets: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for i in range(size):
        name = secret_name(i)
        kind, grouped = i % 3, (i // 3) % 2 == 1
        entry: dict[str, Any] = {"description": f"Benchmark secret {i}", "consumers": [consumer(i, size)]}
        if kind == 0:
            entry.update({"class": "critical", "rotation": {"strategy": "token", "every_days": 30}})
            if grouped:
                entry["keys"] = {
                    "token": {"env": _env(i, "token"), "generate": {"kind": "password", "length": 48}},
                    "host": {"env": _env(i, "host"), "config": {"default": f"svc{i}.internal.corp"}},
                    "url": {"env": _env(i, "url"), "template": "https://{host}/?t={token}"},
                }
            else:
                entry["value"] = {"env": _env(i, "value"),
                                  "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}
        elif kind == 1:
            entry.update({"class": "critical", "rotation": "on-compromise",
                          "rotation_reason": "issued by the upstream provider - rotate there then set it"})
            if grouped:
                entry["keys"] = {
                    "password": {"env": _env(i, "password"),
                                 "generate": {"kind": "password", "length": 48, "alphabet": "alphanumeric"}},
                    "host": {"env": _env(i, "host"), "config": {"default": f"db{i}.internal.corp"}},
                    "url": {"env": _env(i, "url"), "template": "postgresql://app:{password}@{host}/app"},
                }
            else:
                entry["value"] = {"env": _env(i, "value"), "external": {}}
                plain[f"{PROJECT}:{_camel(name, '')}"] = {"secure": "v1:benchmark-ciphertext"}
        else:
            entry["class"] = "configuration"
            if grouped:
                entry["keys"] = {
                    "endpoint": {"env": _env(i, "endpoint"), "config": {"default": f"https://api{i}.corp"}},
                    "port": {"env": _env(i, "port"), "config": {"default": "443"}, "type": "integer"},
                    "clientId": {"env": _env(i, "client_id"), "generate": {"kind": "uuid"}},
                }
            else:
                entry["value"] = {"env": _env(i, "value"), "config": {}}
                plain[f"{PROJECT}:{_camel(name, '')}"] = f"bucket-{i}-uploads"
        secrets[name] = entry
    return {"app": APP, "owner": "platform", "environments": [ENVIRONMENT], "secrets": secrets}, plain


CDK_STACK = "staging"
CDK_APP = "cdkapp"
SHAPES = ("mixed", "cdk")
"""`mixed`: catalog() above, stack STACK; `cdk`: cdk_catalog(), stack CDK_STACK."""


def cdk_catalog(size: int) -> dict[str, Any]:
    """The catalog of the CDK-shaped app (module docstring)."""
    reason = "a database credential the DBA team rotates by hand"
    secrets: dict[str, Any] = {}
    for i in range(size):
        entry: dict[str, Any] = {"description": f"Benchmark secret {i}", "class": "critical"}
        kind = i % 3
        if kind == 0:
            entry.update({"rotation": "on-compromise", "rotation_reason": reason})
            entry["keys"] = {
                "username": {"env": _env(i, "username"), "config": {"default": f"app{i}"}},
                "host": {"env": _env(i, "host"), "config": {"default": f"db{i}.internal.corp"}},
                "port": {"env": _env(i, "port"), "config": {"default": "5432"}, "type": "integer"},
                "dbname": {"env": _env(i, "dbname"), "config": {"default": f"app{i}"}},
                "password": {"env": _env(i, "password"),
                             "generate": {"kind": "password", "length": 48, "alphabet": "alphanumeric"}},
            }
        elif kind == 1:
            entry["rotation"] = {"strategy": "token", "every_days": 90}
            entry["value"] = {"env": _env(i, "value"), "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}
        else:
            entry.update({"rotation": "on-compromise", "rotation_reason": reason})
            entry["value"] = {"env": _env(i, "value"), "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}
        secrets[secret_name(i)] = entry
    return {"app": CDK_APP, "owner": "platform", "environments": [ENVIRONMENT], "secrets": secrets}


def cdk_stack_config() -> dict[str, Any]:
    return {"config": {
        "aws:region": "eu-west-1",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:environment": ENVIRONMENT,
        f"{PROJECT}:recoveryWindowDays": 7,
        f"{PROJECT}:tags": {"cost-centre": "platform"},
        f"{PROJECT}:principals": {
            "runtime": [f"arn:aws:iam::{ACCOUNT}:role/{CDK_APP}-runtime"],
            "ci": [f"arn:aws:iam::{ACCOUNT}:role/{CDK_APP}-deploy"],
        },
    }}


def stack_of(shape: str) -> str:
    return CDK_STACK if shape == "cdk" else STACK


def stack_config(values: dict[str, Any], size: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "aws:region": "eu-west-1",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:environment": ENVIRONMENT,
        f"{PROJECT}:recoveryWindowDays": 7,
        f"{PROJECT}:tags": {"cost-centre": "platform"},
        f"{PROJECT}:principals": {
            "runtime": [f"arn:aws:iam::{ACCOUNT}:role/{APP}-runtime"],
            "ci": [f"arn:aws:iam::{ACCOUNT}:role/{APP}-deploy"],
            "services": {service: [f"arn:aws:iam::{ACCOUNT}:role/{APP}-{service}"]
                         for service in sorted({consumer(i, size) for i in range(size)})},
        },
    }
    config.update(values)
    return {"config": config}


def make_project(directory: Path, size: int, shape: str = "mixed") -> Path:
    """A project directory: this repository's Pulumi.yaml, a generated catalog and stack config."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    if shape == "cdk":
        (directory / "catalog.yaml").write_text(yaml.safe_dump(cdk_catalog(size), sort_keys=False))
        (directory / f"Pulumi.{CDK_STACK}.yaml").write_text(yaml.safe_dump(cdk_stack_config(), sort_keys=False))
        return directory
    document, values = catalog(size)
    (directory / "catalog.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(stack_config(values, size), sort_keys=False))
    return directory


# ---------------------------------------------------------------- a catalog of server credentials (bench/life.py)

LIFE_STACK = "staging"
LIFE_APP = "lifeapp"
LIFE_STRATEGIES = ("postgres-single-user", "postgres-alternating-users", "redis-acl", "token")
"""Secret i of `server_catalog` is rotated by LIFE_STRATEGIES[i % 4]."""


def life_secret(i: int) -> str:
    return f"cred-{i:04d}"


def life_strategy(i: int) -> str:
    return LIFE_STRATEGIES[i % len(LIFE_STRATEGIES)]


def server_catalog(size: int, every_days: tuple[int, ...] = (30, 60, 90)) -> dict[str, Any]:
    """A catalog of `size` rotated credentials of real servers (and tokens), for the simulated year: secret i is
    rotated by `life_strategy(i)` every `every_days[i % len(every_days)]` days (staggered across the set), with
    the masters `database-admin` and `redis-admin` read from the stack config. Host and port are stack config
    (`<camel name>Host`/`Port`), so the same catalog points at any server."""
    secrets: dict[str, Any] = {
        "database-admin": {
            "description": "PostgreSQL superuser the rotation functions use", "class": "critical",
            "rotation": "on-compromise", "rotation_reason": "the database operator owns it",
            "keys": {"username": {"config": {}}, "password": {"external": {}}}},
        "redis-admin": {
            "description": "Redis ACL admin the rotation functions use", "class": "critical",
            "rotation": "on-compromise", "rotation_reason": "the Redis operator owns it",
            "keys": {"username": {"config": {}}, "password": {"external": {}}}},
    }
    for i in range(size):
        name, strategy = life_secret(i), life_strategy(i)
        rotation: dict[str, Any] = {"strategy": strategy, "every_days": every_days[i % len(every_days)]}
        entry: dict[str, Any] = {"description": f"Simulated credential {i}", "class": "critical",
                                 "consumers": [f"app-{i:04d}"]}
        if strategy == "token":
            entry["value"] = {"env": _env(i, "token"), "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}
        elif strategy.startswith("postgres"):
            rotation["master"] = "database-admin"
            entry["keys"] = {
                "engine": {"config": {"default": "postgres"}},
                "host": {"env": _env(i, "host"), "config": {}},
                "port": {"env": _env(i, "port"), "config": {}, "type": "integer"},
                "dbname": {"env": _env(i, "dbname"), "config": {"default": "postgres"}},
                "username": {"env": _env(i, "username"), "config": {"default": f"life_{i:04d}"}},
                "password": {"env": _env(i, "password"),
                             "generate": {"kind": "password", "length": 48, "alphabet": "alphanumeric"}},
            }
        else:
            rotation["master"] = "redis-admin"
            entry["keys"] = {
                "host": {"env": _env(i, "host"), "config": {}},
                "port": {"env": _env(i, "port"), "config": {}, "type": "integer"},
                "username": {"env": _env(i, "username"), "config": {"default": f"life-{i:04d}"}},
                "password": {"env": _env(i, "password"),
                             "generate": {"kind": "password", "length": 48, "alphabet": "alphanumeric"}},
                "tls": {"config": {"default": "false"}, "type": "boolean"},
            }
        entry["rotation"] = rotation
        secrets[name] = entry
    return {"app": LIFE_APP, "owner": "platform", "environments": [LIFE_STACK],
            "services": [f"app-{i:04d}" for i in range(size)], "secrets": secrets}


Server = tuple[str, int, str]
"""host, port, admin user name."""


def server_stack_config(size: int, postgres: Server, redis: Server) -> dict[str, Any]:
    """The staging stack of `server_catalog(size)`, its hosts and ports those of the given servers. The masters'
    passwords are `secure:` entries the offline run replaces by stand-ins; bench/life.py gives the applied
    versions the servers' real ones (what `pulumi up` would decrypt)."""
    values: dict[str, Any] = {}
    for master, (_, _, user) in (("database-admin", postgres), ("redis-admin", redis)):
        values[f"{PROJECT}:{_camel(master, 'username')}"] = user
        values[f"{PROJECT}:{_camel(master, 'password')}"] = {"secure": "v1:life-ciphertext"}
    for i in range(size):
        strategy = life_strategy(i)
        if strategy == "token":
            continue
        host, port = (postgres if strategy.startswith("postgres") else redis)[:2]
        values[f"{PROJECT}:{_camel(life_secret(i), 'host')}"] = host
        values[f"{PROJECT}:{_camel(life_secret(i), 'port')}"] = str(port)
    return {"config": {
        "aws:region": "us-east-1",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:recoveryWindowDays": 7,
        f"{PROJECT}:protectSecrets": False,
        f"{PROJECT}:principals": {"ci": [f"arn:aws:iam::{ACCOUNT}:role/{LIFE_APP}-deploy"]},
        f"{PROJECT}:rotationSubnetIds": ["subnet-0a1b2c3d4e5f60711"],
        f"{PROJECT}:rotationSecurityGroupIds": ["sg-0a1b2c3d4e5f60713"],
        **values,
    }}


def make_life_project(directory: Path, size: int, postgres: Server, redis: Server,
                      every_days: tuple[int, ...] = (30, 60, 90)) -> Path:
    """A project directory holding `server_catalog(size)` and its staging stack."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    (directory / "catalog.yaml").write_text(yaml.safe_dump(server_catalog(size, every_days), sort_keys=False))
    stack = directory / f"Pulumi.{LIFE_STACK}.yaml"
    stack.touch(mode=0o600)
    stack.write_text(yaml.safe_dump(server_stack_config(size, postgres, redis), sort_keys=False))
    return directory
