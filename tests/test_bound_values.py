"""A JSON key bound to an environment variable arrives as text the consumer can parse.

The ECS agent fetches `valueFrom <arn>:<key>::` by unmarshalling the SecretString into a
`map[string]interface{}` and formatting the key's value with `fmt.Sprintf("%v", value)`
(aws/amazon-ecs-agent `agent/asm/asm.go`, GetSecretFromASMWithInput). Only a string arrives as written:
`encoding/json` makes every number a float64, which `%v` prints like `%g` with the shortest precision
(Go `fmt` docs: "%v for float64 is %g"; `strconv.FormatFloat(f, 'g', -1, 64)` switches to an exponent
from 1e+06 on, strconv/ftoa.go `eprec = 6` when shortest), and an object arrives as `map[k:v ...]`.

`go_v` below re-implements that formatting for the types json.Unmarshal produces, and every
`ecsSecrets` entry of every example (each stack previewed with every value set) is fed through it:
the program's stored document where the program writes one, and the rotation function's own first
document (built by the deployed function's strategy from the recorded ROTATION_TARGETS) where the
function writes it (a `first_value: rotation` secret, a published public key).
"""

from __future__ import annotations

import decimal
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.errors import ConfigurationError
from preview.cli import Report
from preview.model import plain
from rotation import strategies
from rotation.protocol import RotationContext
from rotation.strategies.jwt import public_document, sign_rs256, verify_rs256
from tests.conftest import MINIMAL_STACK, REPO, run_stack

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/catalog.yaml"))
STACKS = ("staging", "production")
FAKE_CIPHERTEXT = "v1:" + "A" * 44
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
FUNCTION = "aws:lambda/function:Function"


def go_float(value: float) -> str:
    """`strconv.FormatFloat(value, 'g', -1, 64)`: the shortest digits that round-trip (Python's repr finds the
    same ones), in %e form when the decimal exponent is below -4 or at least 6, else in %f form."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign = "-" if value < 0 else ""
    shortest = decimal.Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, shortest.digits))
    point = len(digits) + int(shortest.exponent)  # value = 0.<digits> x 10^point
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_v(value: Any) -> str:
    """`fmt.Sprintf("%v", v)` of what `json.Unmarshal` puts in an `interface{}`: string, float64, bool, nil,
    []interface{} (`[a b]`), map[string]interface{} (`map[k:v]`, keys sorted: Go fmt docs, "maps are printed
    in key-sorted order")."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return go_float(float(value))
    if isinstance(value, list):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_v(v)}" for k, v in sorted(value.items())) + "]"
    raise TypeError(type(value).__name__)


@pytest.mark.parametrize(("value", "text"), [
    ("plain", "plain"), (True, "true"), (None, "<nil>"), (5432, "5432"), (999999, "999999"),
    (1000000, "1e+06"), (1234567, "1.234567e+06"), (-1000000, "-1e+06"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (2.5, "2.5"), (0, "0"), ([1, "a"], "[1 a]"),
    ({"keys": [{"kid": "k", "e": "AQAB"}]}, "map[keys:[map[e:AQAB kid:k]]]"),
])
def test_go_v_formats_like_the_agent(value: Any, text: str) -> None:
    """Known outputs of Go's fmt for these values (Go playground, `fmt.Println(float64(1000000))` prints
    1e+06); the emulation must match them before it judges anything."""
    assert go_v(value) == text


def arrives_as_intended(value: Any) -> bool:
    """What the consumer parses from the variable is what the document holds: a string is itself (JSON text in
    it parses to the same document), a whole number parses back with int(), a boolean reads true/false."""
    arrived = go_v(value)
    if isinstance(value, str):
        return arrived == value
    if isinstance(value, bool):
        return arrived == json.dumps(value)
    if isinstance(value, int):
        try:
            return int(arrived) == value
        except ValueError:
            return False
    return False  # an object, a list, null or a fraction never arrives as something its consumer parses


def _complete(app: str, stack: str, directory: Path) -> Path:
    committed = REPO / "examples" / app / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(committed.read_text())
    for gap in run_stack(stack, REPO, committed).run.outputs["actionRequired"]:
        plain_value = "--secret" not in gap["command"]
        document["config"][f"secrets-platform:{gap['configKey']}"] = (
            "stand-in.example.internal" if plain_value else {"secure": FAKE_CIPHERTEXT})
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _ctx(name: str) -> RotationContext:
    return RotationContext(secret_name=name, token="t" * 36, store=None, client=None)  # type: ignore[arg-type]


def split_value_from(value_from: str) -> tuple[str, str, str]:
    """`<arn>:<json key>:<stage>:<version>` (ECS developer guide, "Pass Secrets Manager secrets through Amazon
    ECS environment variables") -> (secret name, ARN, JSON key); an ARN is 7 colon-separated fields and a
    secret name holds no colon."""
    parts = value_from.split(":")
    return parts[6].rsplit("-", 1)[0], ":".join(parts[:7]), parts[7] if len(parts) > 7 else ""


def _object(text: str) -> dict[str, Any] | None:
    """A grouped secret's document; None for a single value (bound whole, a string by definition)."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def stored_documents(report: Report) -> dict[str, dict[str, Any]]:
    """Secret name -> the JSON document that is in it once it has a value: the program's version, or the first
    value the deployed rotation function writes (and, for a published public key, what its setSecret puts)."""
    documents: dict[str, dict[str, Any]] = {}
    for secret in (r for r in report.run.resources if r.type == SECRET):
        version = next((v for v in report.run.resources if v.type == VERSION and v.parent == secret.parent), None)
        if version is not None and (document := _object(plain(version.inputs["secretString"]))) is not None:
            documents[secret.inputs["name"]] = document
    deployments = {}
    for function in (r for r in report.run.resources if r.type == FUNCTION):
        variables = plain(function.inputs["environment"]["variables"])
        if "ROTATION_STRATEGY" not in variables:
            continue  # the consumer restart function (components/consumers.py) writes no secret
        cls = strategies.load(variables["ROTATION_STRATEGY"])
        assert cls is not None
        for name, params in json.loads(variables["ROTATION_TARGETS"]).items():
            if variables["ROTATION_STRATEGY"] == "jwt-rs256":
                params = {**params, "bits": 2048}  # the size changes no field's type; 4096 only costs time
            deployments[name] = cls(params)
    for name, strategy in deployments.items():
        if name not in documents and strategy.makes_first_value:
            first = strategy.create_first(_ctx(name))
            if (document := _object(first)) is None:
                continue
            documents[name] = document
            public = getattr(strategy, "public", None)
            if public is not None:
                pending = json.loads(strategy.create_pending(first, _ctx(name)))
                documents[public] = json.loads(public_document(pending, json.loads(first)))
                documents[public]["_signed_by"] = pending  # kept for the JWKS check below
    return documents


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory):
    runs: dict[tuple[str, str], Report] = {}

    def get(app: str, stack: str) -> Report:
        if (app, stack) not in runs:
            runs[app, stack] = run_stack(stack, REPO, _complete(app, stack, tmp_path_factory.mktemp(f"{app}-{stack}")))
        return runs[app, stack]

    return get


def made_in_aws(app: str, secret_name: str) -> frozenset[str]:
    """The keys of `secret_name` (`<app>/<env>/<name>`) that its first rotation makes, not the program."""
    from components.catalog import load_catalog
    from components.secret import made_by_rotation

    entry = load_catalog(REPO / "examples" / app / "catalog.yaml").secrets.get(secret_name.rsplit("/", 1)[-1])
    return made_by_rotation(entry) if entry is not None else frozenset()


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("app", EXAMPLES)
def test_every_bound_key_arrives_as_text_its_consumer_parses(complete, app: str, stack: str) -> None:
    report = complete(app, stack)
    documents = stored_documents(report)
    entries = report.run.outputs["ecsSecrets"]
    assert entries, f"{app} {stack}: no ecsSecrets"
    checked = 0
    for entry in entries:
        name, _, key = split_value_from(entry["valueFrom"])
        if not key:
            continue  # the whole SecretString, a string by definition
        assert name in documents, f"{app} {stack}: {entry['name']} reads {name}, which nothing writes"
        if key not in documents[name]:
            # A server credential's password (and its url), made by the first rotation inside AWS: the
            # strategy writes them as strings (rotation/strategies/postgres.py, redis_acl.py), text as written.
            assert key in made_in_aws(app, name), f"{app} {stack}: {entry['name']} reads {name}:{key}, never written"
            checked += 1
            continue
        value = documents[name][key]
        assert arrives_as_intended(value), f"{app} {stack}: {entry['name']} ({key}) arrives as {go_v(value)[:60]!r}"
        if key == "jwks":
            # The verifier parses the text and verifies a token signed with the key it must trust.
            signer = documents[name].get("_signed_by") or documents[name]
            token = sign_rs256(signer["private_key_pem"], signer["kid"], {"sub": "x"})
            assert verify_rs256(json.loads(go_v(value)), token) == {"sub": "x"}
        checked += 1
    assert checked, f"{app} {stack}: no JSON key is bound"


CATALOG = """\
app: shop
owner: web
secrets:
  queue:
    description: Queue settings
    class: configuration
    rotation: manual
    consumers: [api]
    keys:
      host: {env: QUEUE_HOST, config: {default: queue.internal}}
      maxBytes: {env: QUEUE_MAX_BYTES, config: {}, type: integer}
      limit: {config: {}, type: integer}
"""


@pytest.mark.parametrize("bound", ["1000000", "-1000000", "123456789012345678901"])
def test_a_bound_number_the_agent_would_mangle_is_refused(bound: str, make_project) -> None:
    stack = MINIMAL_STACK + f"  secrets-platform:queueMaxBytes: '{bound}'\n  secrets-platform:queueLimit: '5'\n"
    with pytest.raises(ConfigurationError) as caught:
        run_stack("staging", make_project(CATALOG, stack))
    assert caught.value.field == "secrets-platform:queueMaxBytes" and caught.value.secret == "queue"
    assert "would arrive in exponent form" in caught.value.reason and go_v(int(bound)) != bound
    assert caught.value.registered == 0
    assert "\n" not in str(caught.value)


def test_a_number_below_a_million_or_not_bound_is_stored_as_a_number(make_project) -> None:
    stack = MINIMAL_STACK + "  secrets-platform:queueMaxBytes: '999999'\n  secrets-platform:queueLimit: '5000000'\n"
    report = run_stack("staging", make_project(CATALOG, stack))
    (version,) = [r for r in report.run.resources if r.type == VERSION]
    assert json.loads(plain(version.inputs["secretString"])) == {"host": "queue.internal", "maxBytes": 999999,
                                                                   "limit": 5000000}
