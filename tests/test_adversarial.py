# ruff: noqa: E501  (a table of cases: one case a line reads better than wrapped ones)
"""A corpus of malformed catalogs and stack configs, as an attacker or a careless user writes them.

Every case must end the offline preview with exit status 2 and one line that names the file and the
field, without a traceback, without any secure value (each stand-in carries a canary made at run
time), and within a bounded time (a safety net against hangs, not a benchmark).
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import preview.stackconfig
from components.catalog import YAML_MAX_BYTES, load_yaml
from preview.cli import main
from tests.conftest import MINIMAL_STACK, REPO
from tests.test_errors import GOOD

CANARY = "cnry" + secrets.token_hex(6)
"""Made at run time; every `secure:` value's stand-in starts with it, so a leak of any is visible."""

BASE = GOOD.replace("    rotation: on-compromise", "    consumers: [api]\n    rotation: on-compromise")
STACK = MINIMAL_STACK + "  secrets-platform:paymentsApiKey: {secure: AAABAKtheCiphertextIsNeverRead}\n"


@dataclass(frozen=True)
class Case:
    id: str
    field: str
    """What the one line must name (the field, or a fragment of the message that locates it)."""
    catalog: str = BASE
    stack: str = STACK
    file: str = ""
    """The file the line must name; the stack file unless the catalog is at fault."""


MIXED = """\
  partner:
    description: Partner API key and the callback signature shared with the partner
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the partner
    consumers: [api]
    keys:
      apiKey: {env: PARTNER_API_KEY, external: {put: ops}}
      signature: {env: PARTNER_SIGNATURE, generate: {kind: bytes, bytes: 32, encoding: base64}}
"""
"""A secret made with no value in state: a generated key the first-value function writes, a key `ops put` writes."""


def catalog_case(id_: str, field: str, old: str, new: str) -> Case:
    assert old in BASE, old
    return Case(id_, field, catalog=BASE.replace(old, new, 1), file="catalog.yaml")


def stack_case(id_: str, field: str, extra: str, base: str = STACK) -> Case:
    return Case(id_, field, stack=base + extra, file="Pulumi.staging.yaml")


def corpus() -> Iterator[Case]:
    # --- the catalog's own structure
    yield catalog_case("no-app", "field 'app'", "app: shop\n", "")
    yield catalog_case("app-upper", "field 'app'", "app: shop", "app: Shop")
    yield catalog_case("app-aws", "field 'app'", "app: shop", "app: aws")
    yield catalog_case("app-long", "field 'app'", "app: shop", "app: " + "s" * 33)
    yield catalog_case("app-slash", "field 'app'", "app: shop", "app: shop/x")
    yield catalog_case("no-owner", "field 'owner'", "owner: platform\n", "")
    yield catalog_case("owner-empty", "field 'owner'", "owner: platform", "owner: ''")
    yield catalog_case("owner-chars", "field 'owner'", "owner: platform", "owner: 'plat;form'")
    yield catalog_case("owner-long", "field 'owner'", "owner: platform", "owner: " + "o" * 257)
    yield catalog_case("secret-owner-chars", "field 'owner'", "    class: critical\n    rotation: {",
                       "    class: critical\n    owner: 'a|b'\n    rotation: {")
    yield catalog_case("no-secrets", "field 'secrets'", "secrets:", "secretz:")
    yield catalog_case("unknown-top", "field 'extra'", "owner: platform", "owner: platform\nextra: 1")
    yield catalog_case("description-long", "field 'description'", "description: Signs sessions",
                       "description: " + "d" * 2049)
    yield catalog_case("description-empty", "field 'description'", "description: Signs sessions", "description: ''")
    yield catalog_case("class-bad", "field 'class'", "class: critical\n    rotation: {", "class: secret\n    rotation: {")
    yield catalog_case("class-typo", "field 'class'", "class: critical\n    rotation: {", "clas: critical\n    rotation: {")
    yield catalog_case("strategy-unknown", "field 'rotation", "strategy: token", "strategy: ldap")
    yield catalog_case("every-days-zero", "field 'rotation", "every_days: 30", "every_days: 0")
    yield catalog_case("every-days-huge", "field 'rotation", "every_days: 30", "every_days: 100000")
    yield catalog_case("every-days-text", "field 'rotation", "every_days: 30", "every_days: monthly")
    yield catalog_case("schedule-and-days", "field 'rotation", "every_days: 30", "every_days: 30, schedule: rate(4 hours)")
    yield catalog_case("schedule-garbage", "field 'rotation", "every_days: 30", "schedule: weekly")
    yield catalog_case("window-bad", "field 'rotation", "every_days: 30", "every_days: 30, window: 90m")
    yield catalog_case("rotation-unknown-word", "field 'rotation'", "rotation: on-compromise", "rotation: sometimes")
    for id_, flag in (("word", "maybe"), ("list", "[true]"), ("huge", "x" * 100_000), ("binary", '"\\x00\\x1b[31m"')):
        yield catalog_case(f"rotation-previous-accepted-{id_}", "field 'rotation",
                           "strategy: token, every_days: 30}", f"strategy: token, every_days: 30, previous_accepted: {flag}}}")
    yield catalog_case("no-rotation-reason", "field 'rotation_reason'",
                       "    rotation_reason: issued by the payment provider\n", "")
    yield catalog_case("reason-chars", "field 'rotation_reason'", "issued by the payment provider",
                       "'issued; by $provider'")
    yield catalog_case("value-and-keys", "field 'value'", "    value:\n      env: SESSION_SECRET",
                       "    keys: {a: {config: {default: x}}}\n    value:\n      env: SESSION_SECRET")
    yield catalog_case("no-value", "secret 'session-secret'",
                       "    value:\n      env: SESSION_SECRET\n      generate: {kind: bytes, bytes: 32, encoding: hex}\n", "")
    yield catalog_case("two-sources", "field 'value'", "      generate: {kind: bytes, bytes: 32, encoding: hex}",
                       "      generate: {kind: bytes, bytes: 32, encoding: hex}\n      external: {}")
    yield catalog_case("generate-kind", "field 'value.generate", "kind: bytes, bytes: 32", "kind: dice, bytes: 32")
    yield catalog_case("generate-bytes-zero", "field 'value.generate", "bytes: 32, encoding: hex",
                       "bytes: 0, encoding: hex")
    yield catalog_case("generate-encoding", "field 'value.generate", "encoding: hex", "encoding: rot13")
    yield catalog_case("weak-critical", "secret 'session-secret'", "bytes: 32, encoding: hex", "bytes: 8, encoding: hex")
    yield catalog_case("env-lower", "field 'value.env'", "env: SESSION_SECRET", "env: session_secret")
    yield catalog_case("env-dash", "field 'value.env'", "env: SESSION_SECRET", "env: SESSION-SECRET")
    yield catalog_case("env-twice", "PAYMENTS_API_KEY", "env: SESSION_SECRET", "env: PAYMENTS_API_KEY")
    yield catalog_case("template-unknown", "field 'keys.endpoint.template'",
                       'config: {default: "https://api.payments.example.net"}', 'template: "https://{host}/v1"')
    yield catalog_case("template-self", "field 'keys.endpoint.template'",
                       'config: {default: "https://api.payments.example.net"}', 'template: "{endpoint}"')
    yield catalog_case("type-on-external", "field 'keys.apiKey", "        external: {}",
                       "        external: {}\n        type: integer")
    yield catalog_case("type-default-bad", "field 'keys.endpoint", 'config: {default: "https://api.payments.example.net"}',
                       'config: {default: "eighty"}\n        type: integer')
    yield catalog_case("required-on-generated", "field 'value", "encoding: hex}", "encoding: hex}\n      required: false")
    yield catalog_case("config-key-bad", "field 'keys.endpoint.config", 'config: {default: "https://api.payments.example.net"}',
                       'config: {config: "bad key!", default: x}')
    yield catalog_case("consumer-upper", "field 'consumers", "consumers: [api]", "consumers: [API]")
    yield catalog_case("env-unknown", "field 'environments'", "    consumers: [api]\n",
                       "    consumers: [api]\n    environments: [prodution]\n")
    yield catalog_case("environments-empty", "field 'environments'", "owner: platform", "owner: platform\nenvironments: []")
    yield catalog_case("writers-not-app", "secret 'payments'", "    consumers: [api]\n",
                       "    consumers: [api]\n    writers: [api]\n")
    yield catalog_case("master-unknown", "field 'rotation", "strategy: token, every_days: 30",
                       "strategy: token, every_days: 30, master: nobody")
    yield catalog_case("first-value-bad", "field 'rotation", "every_days: 30}", "every_days: 30, first_value: human}")
    # Names that would override the consumer's runtime, loader or the AWS SDK.
    for name in ("PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "PYTHONPATH", "PYTHONHOME",
                 "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_CA_BUNDLE", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER",
                 "ECS_CONTAINER_METADATA_URI", "HTTPS_PROXY", "SSL_CERT_FILE", "BASH_ENV", "TZ"):
        yield catalog_case(f"env-reserved-{name}", "field 'value.env'", "env: SESSION_SECRET", f"env: {name}")
    # Broken YAML.
    yield Case("yaml-tab", "invalid YAML", catalog=BASE.replace("  session-secret:", "\tsession-secret:"),
               file="catalog.yaml")
    yield Case("yaml-duplicate-key", "duplicate key", catalog=BASE.replace("owner: platform", "owner: platform\nowner: x"),
               file="catalog.yaml")
    yield Case("yaml-unclosed", "invalid YAML", catalog=BASE.replace("consumers: [api]", "consumers: [api"),
               file="catalog.yaml")
    yield Case("yaml-list-top", "catalog.yaml", catalog="- app: shop\n", file="catalog.yaml")
    yield Case("yaml-scalar-top", "catalog.yaml", catalog="just words\n", file="catalog.yaml")
    yield Case("yaml-empty", "catalog.yaml", catalog="", file="catalog.yaml")
    yield Case("yaml-python-tag", "invalid YAML", catalog="app: !!python/object/apply:os.system [true]\n",
               file="catalog.yaml")
    yield Case("yaml-complex-key", "invalid YAML", catalog="? [a, b]\n: c\n", file="catalog.yaml")

    # --- the stack file
    yield stack_case("no-region", "field 'aws:region'", "", base=STACK.replace("  aws:region: eu-west-1\n", ""))
    for region in ("zz-nowhere-9", "eu-west-9", "EU-WEST-1", "cn-north-1", "us-gov-west-1", "eu-west-1 ", "*"):
        yield stack_case(f"region-{region.strip() or 'blank'}", "field 'aws:region'", "",
                         base=STACK.replace("aws:region: eu-west-1", f"aws:region: '{region}'"))
    yield stack_case("replica-unknown", "field 'secrets-platform:replicaRegions'",
                     "  secrets-platform:replicaRegions: [zz-nowhere-9]\n")
    yield stack_case("replica-self", "field 'secrets-platform:replicaRegions'",
                     "  secrets-platform:replicaRegions: [eu-west-1]\n")
    yield stack_case("replica-twice", "field 'secrets-platform:replicaRegions'",
                     "  secrets-platform:replicaRegions: [us-east-1, us-east-1]\n")
    yield stack_case("replica-not-list", "field 'secrets-platform:replicaRegions'",
                     "  secrets-platform:replicaRegions: {a: b}\n")
    yield stack_case("no-account", "field 'secrets-platform:accountId'", "",
                     base=STACK.replace('  secrets-platform:accountId: "210987654321"\n', ""))
    for account in ("12345", "21098765432x", "-210987654321", "2109876543210"):
        yield stack_case(f"account-{account}", "field 'secrets-platform:accountId'", "",
                         base=STACK.replace('accountId: "210987654321"', f'accountId: "{account}"'))
    for key, value in (("recoveryWindowDays", "3"), ("recoveryWindowDays", "thirty"), ("recoveryWindowDays", "31"),
                       ("kmsDeletionWindowDays", "6"), ("kmsDeletionWindowDays", "1e3"),
                       ("protectSecrets", "yes please"), ("ciReadsValues", "maybe"), ("protectSecrets", "1")):
        yield stack_case(f"{key}-{value}", f"field 'secrets-platform:{key}'", f"  secrets-platform:{key}: '{value}'\n",
                         base=STACK.replace("  secrets-platform:recoveryWindowDays: 7\n", ""))
    yield stack_case("environment-upper", "field 'secrets-platform:environment'",
                     "  secrets-platform:environment: Staging\n")
    yield stack_case("environment-unknown", "field 'secrets-platform:environment'", "  secrets-platform:environment: qa\n")
    # Typos: a setting, an external value, a plain value.
    for typo in ("recoveryWindowDayz", "protectSecret", "paymentsApiKee", "paymentsEndpont", "principal", "tag"):
        yield stack_case(f"unknown-{typo}", f"field 'secrets-platform:{typo}'", f"  secrets-platform:{typo}: 'x'\n")
    # A setting given as a secret: refused without quoting it.
    for key in ("accountId", "catalog", "environment", "recoveryWindowDays", "protectSecrets", "kmsDeletionWindowDays",
                "replicaRegions", "ciReadsValues", "rotationSubnetIds", "rotationSecurityGroupIds", "principals", "tags"):
        yield stack_case(f"secure-{key}", f"field 'secrets-platform:{key}'",
                         f"  secrets-platform:{key}: {{secure: AAABAKnotRead}}\n",
                         base="\n".join(line for line in STACK.splitlines()
                                        if f"secrets-platform:{key}:" not in line) + "\n")
    yield stack_case("secure-region", "field 'aws:region'", "  aws:region: {secure: AAABAKnotRead}\n",
                     base=STACK.replace("  aws:region: eu-west-1\n", ""))
    yield stack_case("secure-plain-config", "field 'secrets-platform:paymentsEndpoint'",
                     "  secrets-platform:paymentsEndpoint: {secure: AAABAKnotRead}\n")
    yield stack_case("external-plain-text", "field 'secrets-platform:paymentsApiKey'",
                     "  secrets-platform:paymentsApiKey: pk_made_up_for_the_corpus_only\n",
                     base=STACK.replace("  secrets-platform:paymentsApiKey: {secure: AAABAKtheCiphertextIsNeverRead}\n", ""))
    yield stack_case("plain-config-placeholder", "field 'secrets-platform:paymentsEndpoint'",
                     "  secrets-platform:paymentsEndpoint: https://<host>/api\n")
    # Catalog path.
    for path, why in (("/etc/passwd", "absolute"), ("../../../etc/passwd", "dotdot"), ("/dev/zero", "device"),
                      ("missing.yaml", "missing"), (".", "directory"), ("tests", "subdirectory")):
        yield stack_case(f"catalog-{why}", "field 'secrets-platform:catalog'", f"  secrets-platform:catalog: '{path}'\n")
    # Tags.
    yield stack_case("tags-aws-prefix", "secrets-platform:tags", "  secrets-platform:tags: {'aws:owner': x}\n")
    yield stack_case("tags-platform-name", "secrets-platform:tags", "  secrets-platform:tags: {environment: x}\n")
    yield stack_case("tags-long-key", "secrets-platform:tags", f"  secrets-platform:tags: {{{'k' * 129}: x}}\n")
    yield stack_case("tags-long-value", "secrets-platform:tags", f"  secrets-platform:tags: {{team: {'v' * 257}}}\n")
    yield stack_case("tags-bad-chars", "secrets-platform:tags", "  secrets-platform:tags: {team: 'a;b'}\n")
    yield stack_case("tags-too-many", "secrets-platform:tags",
                     "  secrets-platform:tags: {" + ", ".join(f"t{i}: v" for i in range(45)) + "}\n")
    yield stack_case("tags-not-mapping", "secrets-platform:tags", "  secrets-platform:tags: [a, b]\n")
    yield stack_case("tags-number", "secrets-platform:tags", "  secrets-platform:tags: {team: 7}\n")
    # Network ids.
    for key, value in (("rotationSubnetIds", "[subnet-xyz]"), ("rotationSubnetIds", "[subnet-0123]"),
                       ("rotationSubnetIds", "[sg-0123456789abcdef0]"), ("rotationSubnetIds", "subnet-0123456789abcdef0"),
                       ("rotationSecurityGroupIds", "[sg-0123456789ABCDEF0]"),
                       ("rotationSecurityGroupIds", "[sg-0123456789abcdef0, sg-0123456789abcdef0]")):
        other = ("rotationSecurityGroupIds: [sg-0123456789abcdef0]" if key == "rotationSubnetIds"
                 else "rotationSubnetIds: [subnet-0123456789abcdef0]")
        yield stack_case(f"{key}-{value}", f"field 'secrets-platform:{key}'",
                         f"  secrets-platform:{key}: {value}\n  secrets-platform:{other}\n")
    yield stack_case("subnets-without-groups", "field 'secrets-platform:rotationSubnetIds'",
                     "  secrets-platform:rotationSubnetIds: [subnet-0123456789abcdef0]\n")
    # Principals.
    arn = "arn:aws:iam::210987654321:role/"
    for id_, principals, field in (
        ("not-mapping", "[a]", "principals"),
        ("unknown-kind", {"readers": ["a"]}, "principals.readers"),
        ("bad-arn", {"runtime": ["arn:aws:iam::210987654321:user/bob"]}, "principals.runtime"),
        ("other-account", {"runtime": ["arn:aws:iam::111111111111:role/app"]}, "principals.runtime"),
        ("bad-name", {"ci": ["role with spaces"]}, "principals.ci"),
        ("number", {"ci": [7]}, "principals.ci"),
        ("twice", {"runtime": ["shop-app", "shop-app"]}, "principals.runtime"),
        ("two-paths", {"runtime": [f"{arn}a/app"], "ci": [f"{arn}b/app"]}, "principals.ci"),
        ("runtime-and-ci", {"runtime": ["app"], "ci": ["app"]}, "principals.ci"),
        ("service-and-deployer", {"services": {"api": ["api"]}, "deployers": ["api"]}, "principals.deployers"),
        ("unknown-service", {"services": {"apii": ["api"]}}, "principals.services.apii"),
        ("services-list", {"services": ["api"]}, "principals.services"),
    ):
        yield stack_case(f"principals-{id_}", f"field 'secrets-platform:{field}'",
                         f"  secrets-platform:principals: {json.dumps(principals)}\n")
    # How a service reads its secrets (`consumption`): the tolerance of failed logins, hostile.
    for id_, tolerate in (("huge", 10 ** 30), ("negative", -1), ("text", '"300"'), ("bool", "true"),
                          ("float", "1.5"), ("binary", '"\\x00\\x1b[31m"'), ("list", "[300]")):
        yield stack_case(f"consumption-tolerate-{id_}", "field 'secrets-platform:consumption.api.tolerateSeconds'",
                         f"  secrets-platform:consumption: {{api: {{kind: runtime, cacheTtlSeconds: 0, "
                         f"tolerateSeconds: {tolerate}}}}}\n")
    # Alias bombs, depth and size: refused, never expanded.
    bomb = "".join(f"    - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    yield stack_case("yaml-alias-bomb", "field 'config.secrets-platform:tags'",
                     "  secrets-platform:tags:\n    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + bomb)
    yield Case("yaml-alias-bomb-catalog", "field 'secrets.bomb'", file="catalog.yaml",
               catalog=BASE + "  bomb:\n    keys:\n      a: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
                   f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10)))
    yield stack_case("yaml-deep-stack", "field 'config.secrets-platform:tags'",
                     "  secrets-platform:tags: " + "[" * 10000 + "]" * 10000 + "\n")
    yield Case("yaml-deep-catalog", "field 'secrets.deep'", catalog=BASE + "  deep: " + "[" * 10000 + "]" * 10000 + "\n",
               file="catalog.yaml")
    yield Case("yaml-deep-braces", "nests deeper", catalog="app: " + "{a: " * 5000 + "b" + "}" * 5000 + "\n",
               file="catalog.yaml")
    yield stack_case("yaml-cycle", "field 'config.secrets-platform:tags'", "  secrets-platform:tags: &c [*c]\n")
    yield Case("yaml-huge-catalog", "field 'secrets-platform:catalog'", catalog=BASE + "# " + "x" * YAML_MAX_BYTES + "\n",
               file="Pulumi.staging.yaml")
    yield Case("yaml-not-utf8", "not UTF-8", catalog=BASE + "# \udcff\n", file="catalog.yaml")
    # Patterns: RE2 (linear time) refuses what only a backtracking engine runs; each refusal names the field.
    endpoint = 'config: {default: "https://api.payments.example.net"}'
    for id_, pattern in (("backreference", r"^(a)\1$"), ("lookahead", "^(?=sk_)"), ("lookbehind", "(?<!x)y"),
                         ("negative-lookahead", "^(?!test)"), ("atomic-group", "(?>a+)b"), ("possessive", "a*+b"),
                         ("conditional", "(a)?(?(1)b|c)"), ("backslash-Z", "^https\\Z"), ("unclosed", "(https"),
                         ("repeat-too-large", "a{1001}"), ("named-backreference", "(?P<x>a)(?P=x)")):
        yield catalog_case(f"pattern-{id_}", "field 'keys.endpoint.pattern'", endpoint,
                           f"{endpoint}\n        pattern: '{pattern}'")
    yield catalog_case("pattern-per-environment-lookahead", "field 'keys.apiKey.pattern'", "        external: {}",
                       "        external: {}\n        pattern: {production: '^sk_live_', staging: '^(?=sk_test_)'}")
    # Catastrophic backtracking under Python's `re`: with RE2 each ends at once, as a plain mismatch.
    for id_, pattern, value in (("nested-plus", "^(a+)+$", "a" * 40 + "!"), ("alternation", "^(a|a)*$", "a" * 40 + "!"),
                                ("overlap", "^(a|aa)+$", "a" * 60 + "!"), ("double-plus", "(x+x+)+y", "x" * 40 + "z"),
                                ("words", "^(\\w+\\s?)*$", "word " * 12 + "!"), ("dot-star", "^(.*a){30}$", "a" * 40 + "!")):
        redos = catalog_case(f"pattern-redos-{id_}", "does not match the catalog's pattern ('", endpoint,
                             f'config: {{default: "{value}"}}\n        pattern: \'{pattern}\'')
        yield Case(redos.id, redos.field, catalog=redos.catalog,
                   file="Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsEndpoint'")
    # A secret of generated keys and keys put by ops (made once in AWS, no value in state): anything the program
    # would have to write beside them is refused, naming the key.
    mixed = BASE + MIXED
    for id_, key, field in (
            ("template-of-put", "url: {env: PARTNER_URL, template: 'https://partner.example/{apiKey}'}", "keys.url"),
            ("template-of-generated", "url: {env: PARTNER_URL, template: 'https://x.example/{signature}'}", "keys.url"),
            ("plain-config", "host: {env: PARTNER_HOST, config: {default: api.partner.example}}", "keys.host"),
            ("supplied-config", "token: {env: PARTNER_TOKEN, external: {}}", "keys.token"),
            ("huge-template", "url: {env: PARTNER_URL, template: '" + "{apiKey}" * 20_000 + "'}", "keys.url")):
        yield Case(f"mixed-{id_}", f"field '{field}", catalog=mixed + f"      {key}\n", file="catalog.yaml")
    yield Case("mixed-rotated-by-application", "field 'rotation'", file="catalog.yaml",
               catalog=mixed.replace("    rotation: on-compromise\n    rotation_reason: issued by the partner\n",
                                     "    rotation: application\n    writers: [api]\n"))
    yield Case("mixed-put-key-in-stack-config", "field 'secrets-platform:partnerApiKey'", catalog=mixed,
               stack=STACK + "  secrets-platform:partnerApiKey: {secure: AAABAKtheCiphertextIsNeverRead}\n",
               file="Pulumi.staging.yaml")
    # The stack file's own structure.
    yield Case("stack-list", "Pulumi.staging.yaml", stack="- a\n", file="Pulumi.staging.yaml")
    yield Case("stack-config-list", "field 'config'", stack="config: [a]\n", file="Pulumi.staging.yaml")
    yield Case("stack-yaml-broken", "invalid YAML", stack="config: {a: [\n", file="Pulumi.staging.yaml")


CASES = list(corpus())


def test_the_bounds_accept_a_catalog_ten_times_the_benchmarks_largest(tmp_path: Path) -> None:
    """The size and node bounds refuse bombs, not big catalogs: 10,000 secrets of the benchmark's
    `cdk` shape (JSON groups, consumers) load."""
    from bench.generate import cdk_catalog

    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(cdk_catalog(10_000), sort_keys=False))
    assert path.stat().st_size > 1024 * 1024
    assert len(load_yaml(path)["secrets"]) == 10_000


def test_the_corpus_is_large_and_has_no_duplicate_case() -> None:
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `secure:` stand-in starts with the canary."""
    monkeypatch.setattr(preview.stackconfig.secrets, "token_urlsafe",
                        lambda n=32: CANARY + secrets.token_hex(max(n // 2, 8)))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_malformed_input_ends_in_one_line(case: Case, tmp_path: Path, canaries: None) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "catalog.yaml").write_bytes(case.catalog.encode("utf-8", "surrogateescape"))
    (tmp_path / "Pulumi.staging.yaml").write_text(case.stack)
    (tmp_path / "tests").mkdir()
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(tmp_path), "--no-policies"], out=out, err=err)
    text = out.getvalue() + err.getvalue()
    assert CANARY not in text, "a secure value was printed"
    assert "Traceback" not in text
    assert code == 2, text[-2000:]
    assert out.getvalue() == ""
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, err.getvalue()
    assert case.field in lines[0], lines[0]
    if case.file:
        assert case.file in lines[0], lines[0]


REDOS = ("^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^([a-z]+)*[0-9]$")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", REDOS)
def test_a_backtracking_pattern_ends_at_pulumi_up(pattern: str, make_project) -> None:  # type: ignore[no-untyped-def]
    """An external value is held to its pattern at `pulumi up` (not in the offline preview, which holds
    stand-ins): with RE2 the match is linear, so forty `a`s and a `!` are refused at once, never quoted."""
    from components.errors import ConfigurationError
    from tests.test_catalog_requirements import CATALOG, program

    catalog = CATALOG.replace("    value: {env: SIGNING_KEY, external: {}}\n",
                              f"    value: {{env: SIGNING_KEY, external: {{}}, pattern: '{pattern}'}}\n")
    project = make_project(catalog, STACK.replace(
        "  secrets-platform:paymentsApiKey: {secure: AAABAKtheCiphertextIsNeverRead}\n", ""))
    supplied = "a" * 40 + CANARY + "!"
    with pytest.raises(ConfigurationError) as caught:
        program(project, values={"session": secrets.token_urlsafe(32), "signing": supplied})
    assert caught.value.field == "secrets-platform:signing"
    assert CANARY not in str(caught.value) and pattern in str(caught.value)
