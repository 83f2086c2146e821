"""What a real account would refuse that the mock runtime accepts: names, regions, roles, the package.

Each rule here is AWS's (botocore's service models, the IAM and KMS documentation), not ours: the
mocks take any name and any region, so these tests hold the program to what AWS documents.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import botocore.session
import pytest

from components import lambda_package, names
from components.errors import ConfigurationError
from components.lambda_package import problem, source_digest
from preview.mocks import AwsMocks
from preview.runtime import run_program
from preview.stackconfig import load_stack_config
from tests.conftest import MINIMAL_STACK, REPO, current_build
from tests.test_errors import GOOD, expect_error, run_cli

SERVICE_MODELS = botocore.session.get_session()


def model_max(service: str, operation: str, member: str) -> int | None:
    shape = SERVICE_MODELS.get_service_model(service).operation_model(operation).input_shape.members[member]
    return shape.metadata.get("max")


# Resource type -> the limit on its `name` input, as AWS documents it.
LIMITS = {
    "aws:iam/role:Role": model_max("iam", "CreateRole", "RoleName"),
    "aws:iam/policy:Policy": model_max("iam", "CreatePolicy", "PolicyName"),
    # botocore allows 140 because the parameter also takes an ARN; the API reference: "If you specify
    # only the function name, it is limited to 64 characters in length."
    "aws:lambda/function:Function": 64,
    "aws:cloudwatch/logGroup:LogGroup": model_max("logs", "CreateLogGroup", "logGroupName"),
    "aws:cloudwatch/eventRule:EventRule": model_max("events", "PutRule", "Name"),
    # The model carries no max; the CreateTopic documentation: "between 1 and 256 characters long".
    "aws:sns/topic:Topic": 256,
    "aws:kms/alias:Alias": model_max("kms", "CreateAlias", "AliasName"),
    "aws:secretsmanager/secret:Secret": model_max("secretsmanager", "CreateSecret", "Name"),
}
CASE_INSENSITIVE = {"aws:iam/role:Role", "aws:iam/policy:Policy"}
"""IAM: "Names are not distinguished by case" (CreateRole)."""


def test_the_name_limits_are_the_service_models() -> None:
    assert (names.ROLE, names.POLICY, names.LOG_GROUP, names.EVENT_RULE, names.ALIAS) == (
        LIMITS["aws:iam/role:Role"], LIMITS["aws:iam/policy:Policy"], LIMITS["aws:cloudwatch/logGroup:LogGroup"],
        LIMITS["aws:cloudwatch/eventRule:EventRule"], LIMITS["aws:kms/alias:Alias"],
    )
    assert None not in LIMITS.values()


def test_a_long_name_is_cut_with_a_stable_hash_that_keeps_names_apart() -> None:
    a, b = "x" * 70 + "-token", "x" * 70 + "-redis-acl"
    assert names.fit(a, 64) == names.fit(a, 64) and len(names.fit(a, 64)) == 64
    assert names.fit(a, 64) != names.fit(b, 64)
    assert names.fit("short", 64) == "short"


LONG_APP = "a" * 20 + "-billing"  # 28 characters
LONG_ENV = "e" * 19 + "-sandbox"  # 27 characters
DB_KEYS = """\
    keys:
      engine: {config: {default: postgres}}
      host: {config: {default: db.internal}}
      port: {config: {default: "5432"}, type: integer}
      dbname: {config: {default: shop}}
      username: {config: {default: shop}}
      password: {generate: {kind: password, length: 48}}
"""


def long_catalog() -> str:
    """Every strategy, two token groups, long consumer names: every kind of name the program makes."""
    lines = [f"app: {LONG_APP}", "owner: platform", f"environments: [{LONG_ENV}]",
             f"services: [{'c' * 30}-0, {'c' * 30}-1]", "secrets:"]
    for i in range(27):
        lines += [f"  token-{i}:", "    description: a token", "    class: critical",
                  "    rotation: {strategy: token, every_days: 30}",
                  f"    consumers: [{'c' * 30}-{i % 2}]",
                  f"    value: {{env: TOKEN_{i}, generate: {{kind: bytes, bytes: 32, encoding: hex}}}}"]
    lines += ["  jwt:", "    description: signs tokens", "    class: critical",
              "    rotation: {strategy: jwt-hs256, every_days: 90}",
              "    keys:", "      key: {env: JWT_KEY, generate: {kind: bytes, bytes: 64, encoding: base64url}}",
              "  db-admin:", "    description: admin", "    class: critical", "    rotation: manual",
              "    rotation_reason: held by the database team", DB_KEYS.rstrip("\n"),
              "  db:", "    description: the database", "    class: critical",
              "    rotation: {strategy: postgres-alternating-users, every_days: 30, master: db-admin}",
              DB_KEYS.rstrip("\n")]
    return "\n".join(lines) + "\n"


LONG_STACK = MINIMAL_STACK + f"""\
  secrets-platform:environment: {LONG_ENV}
  secrets-platform:rotationSubnetIds: [subnet-0123456789abcdef0]
  secrets-platform:rotationSecurityGroupIds: [sg-0123456789abcdef0]
"""


def test_every_name_fits_its_limit_and_none_collides(make_project: Callable[..., Path]) -> None:
    project = make_project(long_catalog(), LONG_STACK + "  secrets-platform:allowMissingValues: true\n")
    current_build(project)  # allowMissingValues lets values be missing, not the rotation package
    run = run_program(load_stack_config(project, "staging"), project, str(REPO / "__main__.py"))
    by_type: dict[str, list[str]] = defaultdict(list)
    for resource in run.resources:
        if resource.type in LIMITS and "name" in resource.inputs:
            by_type[resource.type].append(resource.inputs["name"])
    assert set(by_type) == set(LIMITS), "the sweep must reach every named type"
    assert len(by_type["aws:lambda/function:Function"]) == 4, "token, token-2, jwt-hs256, postgres"
    for token, given in by_type.items():
        too_long = [n for n in given if len(n) > LIMITS[token]]
        assert not too_long, f"{token}: {too_long} exceed {LIMITS[token]}"
        keys = [n.lower() if token in CASE_INSENSITIVE else n for n in given]
        assert len(set(keys)) == len(keys), f"{token}: names collide: {sorted(keys)}"
    # What the key policy names in advance is what the roles are called.
    roles = set(by_type["aws:iam/role:Role"])
    functions = set(by_type["aws:lambda/function:Function"])
    assert roles == functions
    assert any(len(n) > 56 for n in roles), "the sweep must cut names"


def test_the_app_name_aws_is_refused(make_project: Callable[..., Path]) -> None:
    catalog = GOOD.replace("app: shop", "app: aws")
    expect_error(make_project(catalog, MINIMAL_STACK), "catalog.yaml", "field 'app'", "alias/aws/")


# ------------------------------------------------------------------ two resources, one name


def with_principals(principals: dict[str, object], extra: str = "") -> str:
    return MINIMAL_STACK + f"  secrets-platform:principals: {json.dumps(principals)}\n" + extra


ARN = "arn:aws:iam::210987654321:role/"


@pytest.mark.parametrize(("config", "fragments"), [
    (MINIMAL_STACK + "  secrets-platform:replicaRegions: [eu-central-1, eu-central-1]\n",
     ("field 'secrets-platform:replicaRegions'", "eu-central-1 twice")),
    (with_principals({"runtime": ["shop-app", "shop-app"]}),
     ("field 'secrets-platform:principals.runtime'", "'shop-app' is listed twice")),
    (with_principals({"runtime": [f"{ARN}a/shop-app"], "services": {"api": [f"{ARN}b/shop-app"]}}),
     ("field 'secrets-platform:principals.services.api'", "two ARNs", "whatever the path")),
    (with_principals({"runtime": ["shop-app"], "ci": ["Shop-App"]}),
     ("field 'secrets-platform:principals.ci'", "also in secrets-platform:principals.runtime", "could not deploy")),
    (with_principals({"services": {"api": ["shop-api"]}, "deployers": ["shop-api"]}),
     ("field 'secrets-platform:principals.deployers'", "also in secrets-platform:principals.services.api")),
])
def test_one_name_for_two_resources_is_refused(make_project: Callable[..., Path], config: str,
                                                fragments: tuple[str, ...]) -> None:
    catalog = GOOD.replace("    rotation: on-compromise", "    consumers: [api]\n    rotation: on-compromise")
    expect_error(make_project(catalog, config), "Pulumi.staging.yaml", *fragments)


# ------------------------------------------------------------------ regions


@pytest.mark.parametrize(("config", "fragments"), [
    (MINIMAL_STACK.replace("eu-west-1", "zz-nowhere-9"), ("field 'aws:region'", "'zz-nowhere-9'")),
    (MINIMAL_STACK.replace("eu-west-1", "eu-west-9"), ("field 'aws:region'", "did you mean eu-west-")),
    (MINIMAL_STACK.replace("eu-west-1", "cn-north-1"), ("field 'aws:region'", "aws partition")),
    (MINIMAL_STACK + "  secrets-platform:replicaRegions: [us-east-1, zz-nowhere-9]\n",
     ("field 'secrets-platform:replicaRegions'", "'zz-nowhere-9'")),
])
def test_a_region_aws_does_not_have_is_refused(make_project: Callable[..., Path], config: str,
                                               fragments: tuple[str, ...]) -> None:
    expect_error(make_project(GOOD, config), "Pulumi.staging.yaml", *fragments)


def test_an_opt_in_region_is_a_warning(make_project: Callable[..., Path]) -> None:
    config = MINIMAL_STACK + "  secrets-platform:replicaRegions: [ap-southeast-3, us-east-1]\n"
    code, out, err = run_cli(make_project(GOOD, config))
    assert code == 0, err
    warnings = out.split("\nWarnings (", 1)[1]
    assert "ap-southeast-3 is an opt-in region" in warnings and "enable-region --region-name ap-southeast-3" in warnings
    assert "us-east-1" not in warnings and "eu-west-1" not in warnings


def test_a_ci_role_that_cannot_read_values_back_is_a_warning(make_project: Callable[..., Path]) -> None:
    """relaybox's trial: two README-written examples named a CI role without ciReadsValues, so their CI
    deploys would stop at the provider's read-back of the first secret version."""
    ci = '  secrets-platform:principals: {ci: ["arn:aws:iam::210987654321:role/deploy"]}\n'
    code, out, err = run_cli(make_project(GOOD, MINIMAL_STACK + ci))
    assert code == 0, err
    assert "principals.ci is set without secrets-platform:ciReadsValues" in out.split("\nWarnings (", 1)[1]
    code, out, err = run_cli(make_project(GOOD, MINIMAL_STACK + ci + "  secrets-platform:ciReadsValues: true\n"))
    assert code == 0, err
    assert "\nWarnings (" not in out


def test_a_default_region_gives_no_warning(make_project: Callable[..., Path]) -> None:
    code, out, err = run_cli(make_project(GOOD, MINIMAL_STACK))
    assert code == 0, err
    assert "\nWarnings (" not in out


# ------------------------------------------------------------------ who may deploy, roles that exist


def key_policy(run_resources: list) -> dict[str, object]:  # type: ignore[type-arg]
    key = next(r for r in run_resources if r.type == "aws:kms/key:Key")
    document: dict[str, object] = json.loads(key.inputs["policy"])
    return document


def store_principals(project: Path) -> list[str]:
    current_build(project)  # allowMissingValues lets values be missing, not the rotation package
    run = run_program(load_stack_config(project, "staging"), project, str(REPO / "__main__.py"))
    statements = key_policy(run.resources)["Statement"]
    assert isinstance(statements, list)
    store = next(s for s in statements if s["Sid"] == "StoreOnlyThroughSecretsManager")
    principals = store["Principal"]["AWS"]
    return [principals] if isinstance(principals, str) else list(principals)


def test_deployers_and_ci_may_store_through_the_key_and_nobody_else(make_project: Callable[..., Path]) -> None:
    config = with_principals({"runtime": ["shop-app"], "ci": ["shop-deploy"],
                              "deployers": [f"{ARN}aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123"]})
    found = store_principals(make_project(GOOD, config + "  secrets-platform:allowMissingValues: true\n"))
    assert f"{ARN}shop-deploy" in found
    assert f"{ARN}aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123" in found
    assert f"{ARN}shop-app" not in found
    assert "arn:aws:iam::210987654321:root" not in found


def test_without_named_deployers_the_account_decides(make_project: Callable[..., Path]) -> None:
    config = with_principals({"runtime": ["shop-app"]}) + "  secrets-platform:allowMissingValues: true\n"
    assert "arn:aws:iam::210987654321:root" in store_principals(make_project(GOOD, config))


def test_a_role_named_by_name_is_looked_up_for_its_path(make_project: Callable[..., Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real = AwsMocks.call

    def with_path(self: AwsMocks, args):  # type: ignore[no-untyped-def]
        if args.token == "aws:iam/getRole:getRole" and args.args["name"] == "shop-deploy":
            return {"name": "shop-deploy", "arn": f"{ARN}pipelines/shop-deploy", "id": "shop-deploy"}, []
        return real(self, args)

    monkeypatch.setattr(AwsMocks, "call", with_path)
    config = with_principals({"ci": ["shop-deploy"]}) + "  secrets-platform:allowMissingValues: true\n"
    assert f"{ARN}pipelines/shop-deploy" in store_principals(make_project(GOOD, config))


def test_a_role_that_does_not_exist_stops_before_anything_is_created(
        make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real = AwsMocks.call

    def missing(self: AwsMocks, args):  # type: ignore[no-untyped-def]
        if args.token == "aws:iam/getRole:getRole" and args.args["name"] == "shop-api":
            # What the provider answers for a role IAM does not have.
            raise Exception("invoke of aws:iam/getRole:getRole failed: reading IAM Role (shop-api): "
                            "NoSuchEntity: The role with name shop-api cannot be found.")
        return real(self, args)

    monkeypatch.setattr(AwsMocks, "call", missing)
    catalog = GOOD.replace("    rotation: on-compromise", "    consumers: [api]\n    rotation: on-compromise")
    project = make_project(catalog, with_principals({"runtime": ["shop-app"], "services": {"api": ["shop-api"]}}))
    stack = load_stack_config(project, "staging")
    stack.values["secrets-platform:allowMissingValues"] = "true"
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    assert caught.value.field == "secrets-platform:principals.services.api"
    assert "role 'shop-api' cannot be found" in str(caught.value) and "NoSuchEntity" in str(caught.value)
    assert caught.value.registered == 0


# ------------------------------------------------------------------ the rotation package


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    copy = tmp_path / "rotation"
    shutil.copytree(REPO / "rotation", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_a_build_records_the_digest_of_its_sources(tmp_path: Path, sources: Path) -> None:
    build = tmp_path / "build"
    assert problem(build, sources) == "it does not exist"
    build.mkdir()
    assert "records no source digest" in str(problem(build, sources))
    (build / lambda_package.STAMP).write_text(source_digest(sources) + "\n")
    assert problem(build, sources) is None
    (sources / "strategies" / "token.py").write_text((sources / "strategies" / "token.py").read_text() + "\n# x\n")
    assert "other sources" in str(problem(build, sources))
    # A README or a cache does not make a build stale; a new requirement does.
    (build / lambda_package.STAMP).write_text(source_digest(sources) + "\n")
    (sources / "README.md").write_text("changed")
    assert problem(build, sources) is None
    (sources / "requirements.txt").write_text((sources / "requirements.txt").read_text() + "six==1.16.0\n")
    assert problem(build, sources) is not None


def test_the_package_ships_bytecode_lambda_reads_without_its_sources(tmp_path: Path) -> None:
    """The build compiles with an interpreter of the runtime's version into unchecked-hash `.pyc`
    files (flags 0b01 in the header, PEP 552): the read-only /var/task gets no compile at cold start,
    and no file time decides whether a `.pyc` is used. Run here with this interpreter's own version
    as the runtime."""
    import importlib.util
    import subprocess
    import sys

    build = tmp_path / "build"
    shutil.copytree(REPO / "rotation", build / "rotation", ignore=shutil.ignore_patterns("__pycache__"))
    mine = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert lambda_package.compile_bytecode(build, sys.executable, runtime=mine) is None
    sources = sorted(build.rglob("*.py"))
    assert sources
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        header = compiled.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(header[4:8], "little") == 0b01, compiled
    # With the sources' times changed, the package still imports from its bytecode without writing any.
    for source in sources:
        source.touch()
    done = subprocess.run([sys.executable, "-B", "-c", "import rotation.handler, rotation.strategies.token"],
                          cwd=build, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not [p for p in build.rglob("*.pyc") if p.stat().st_mtime > sources[0].stat().st_mtime + 1]


def test_bytecode_of_another_python_version_is_not_made(tmp_path: Path) -> None:
    """Bytecode of another version would be ignored by the runtime: the build says so and makes none."""
    import sys

    (tmp_path / "a.py").write_text("x = 1\n")
    why = lambda_package.compile_bytecode(tmp_path, sys.executable, runtime="python2.7")
    assert why is not None and "python2.7" in why
    assert not list(tmp_path.rglob("*.pyc"))
    assert "no python0.0 on PATH" in str(lambda_package.compile_bytecode(tmp_path, "python0.0"))


def test_the_build_script_compiles_for_the_runtime_and_pins_its_version() -> None:
    script = (REPO / "scripts" / "build-lambda.sh").read_text()
    assert '--python-version "$version"' in script and "--runtime-version" in script
    assert script.index("--compile-with") > script.index("find \"$out\" -name '__pycache__'")
    assert lambda_package.runtime_version() == lambda_package.RUNTIME.removeprefix("python")


def test_the_build_script_writes_the_digest_the_program_checks() -> None:
    script = (REPO / "scripts" / "build-lambda.sh").read_text()
    assert "-m components.lambda_package \"$out\"" in script
    assert script.index('-m components.lambda_package "$out"') > script.index("cp -r rotation/*.py rotation/strategies")


def test_without_a_build_pulumi_up_stops_naming_make_lambda(make_project: Callable[..., Path]) -> None:
    project = make_project(GOOD, MINIMAL_STACK)
    stack = load_stack_config(project, "staging")
    stack.values["secrets-platform:paymentsApiKey"] = secrets.token_urlsafe(24)
    stack.secret_keys.append("secrets-platform:paymentsApiKey")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    assert "make lambda" in str(caught.value) and "build/rotation-lambda" in str(caught.value)
    assert caught.value.registered == 0


def test_the_preview_lists_the_build_as_action_required(make_project: Callable[..., Path]) -> None:
    code, out, err = run_cli(make_project(GOOD, MINIMAL_STACK))
    assert code == 0, err
    assert "  - the rotation Lambda package build/rotation-lambda: it does not exist: make lambda" in out


def test_without_rotation_no_build_is_needed(make_project: Callable[..., Path]) -> None:
    catalog = GOOD.replace("rotation: {strategy: token, every_days: 30}",
                           "rotation: on-compromise\n    rotation_reason: rotated when leaked")
    # A generated value no function rotates is made once by the first-value function, from the same package.
    code, out, err = run_cli(make_project(catalog, MINIMAL_STACK))
    assert code == 0, err
    assert "build/rotation-lambda: it does not exist: make lambda" in out
    supplied = catalog.replace("generate: {kind: bytes, bytes: 32, encoding: hex}", "external: {}")
    code, out, err = run_cli(make_project(supplied, MINIMAL_STACK))
    assert code == 0, err
    assert "make lambda" not in out
