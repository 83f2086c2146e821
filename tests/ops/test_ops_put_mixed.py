"""A secret that mixes generated keys with keys put out of band (`external: {put: ops}`), rotated by no function:
no value in Pulumi state. The program creates it empty and registers no random resource and no version; the
first-value function writes the generated keys only (into the empty secret); `python -m ops put` adds the put
keys, keeping the generated ones. Against moto on loopback; values are made at run time and the `moto` fixture
fails the test if any printed output holds one."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ops_harness import Moto, Result
from servers import moto_keeps_version_values

from components.errors import ConfigurationError
from preview.runtime import run_program
from preview.stackconfig import load_stack_config
from rotation.errors import ConfigurationError as FunctionConfigurationError
from rotation.errors import RotationError
from rotation.first_value import first_token, load_kept, load_targets, make_first_value
from tests.conftest import current_build

REPO = Path(__file__).resolve().parents[2]
FULL = "shop/staging/buli2"
CATALOG = """\
app: shop
owner: platform
environments: [production, staging]
secrets:
  buli2:
    description: Partner API credentials and callback signature secret
    class: critical
    rotation: on-compromise
    rotation_reason: the API key is issued by the partner and the signature secret is shared with them
    consumers: [api]
    keys:
      apiKey: {env: BULI2_API_KEY, external: {put: ops}}
      signatureSecret: {env: BULI2_SIGNATURE_SECRET, generate: {kind: bytes, bytes: 32, encoding: base64}}
"""
STACK = """\
config:
  aws:region: ap-southeast-2
  secrets-platform:accountId: "123456789012"
  secrets-platform:recoveryWindowDays: 7
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK)
    current_build(tmp_path)  # as after `make lambda`: the program declares the first-value function
    return tmp_path


def _run(project: Path) -> Any:
    return run_program(load_stack_config(project, "staging"), project, str(REPO / "__main__.py"))


def _function_env(run: Any) -> dict[str, str]:
    (function,) = [r for r in run.resources if r.type == "aws:lambda/function:Function"
                   and r.name.endswith("first-value-function")]
    return dict(function.inputs["environment"]["variables"])


def _put(ops: Callable[..., Result], project: Path, *args: str, value: str) -> Result:
    return ops("put", "--stack", "staging", "--project-dir", str(project), *args, stdin=io.StringIO(value + "\n"))


def test_no_random_resource_and_no_version_only_the_generated_key_for_the_function(project: Path) -> None:
    """Canary count 0: nothing generated passes through the program, and the function is told the generated key
    (and its rule) only, the put key by name so that it refuses a replace."""
    run = _run(project)
    assert [r.name for r in run.resources if r.type.startswith("random:")] == []
    assert [r for r in run.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"] == []
    assert run.generated == []
    (secret,) = [r for r in run.resources if r.type == "aws:secretsmanager/secret:Secret"]
    assert secret.inputs["tags"]["first-value"] == "function"
    env = _function_env(run)
    assert json.loads(env["FIRST_VALUE_TARGETS"]) == {FULL: {"signatureSecret": {
        "kind": "bytes", "bytes": 32, "encoding": "base64"}}}
    assert json.loads(env["FIRST_VALUE_KEPT"]) == {FULL: ["apiKey"]}
    invocations = [json.loads(r.inputs["input"]) for r in run.resources
                   if r.type == "aws:lambda/invocation:Invocation"]
    assert invocations == [{"FirstValue": FULL}]
    commands = {g["command"] for g in run.outputs["actionRequired"]}
    assert commands == {"python -m ops put --stack staging buli2 apiKey"}
    assert {"BULI2_API_KEY", "BULI2_SIGNATURE_SECRET"} <= set(run.outputs["envVars"])


def test_with_the_key_from_config_the_program_keeps_pulumi_random(project: Path) -> None:
    """The counter-case (filot's buli2 today): a supplied value the program writes keeps the generated one in
    the program, and no FIRST_VALUE_KEPT is set on a stack without a put key."""
    (project / "catalog.yaml").write_text(CATALOG.replace("external: {put: ops}", "external: {}"))
    config = load_stack_config(project, "staging")
    config.values["secrets-platform:buli2ApiKey"] = "k" + "Zq7Rk2mZx9PwL4vNb1Tg"
    config.secret_keys.append("secrets-platform:buli2ApiKey")
    run = run_program(config, project, str(REPO / "__main__.py"))
    assert [r.type for r in run.resources if r.type.startswith("random:")] == ["random:index/randomBytes:RandomBytes"]
    assert len([r for r in run.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]) == 1
    assert not [r for r in run.resources if r.type == "aws:lambda/function:Function"
                and r.name.endswith("first-value-function")]


def test_deploy_function_put_then_up_and_refresh_change_nothing(moto: Moto, ops: Callable[..., Result],
                                                                 project: Path) -> None:
    """The whole life, played by the test engine with the provider's semantics (tests/life/engine.py): `pulumi
    up` creates the empty secret; the Invocation's run writes signatureSecret only; `ops put` adds apiKey and
    keeps signatureSecret; the next up and refresh change nothing, and a re-run of the Invocation writes nothing."""
    from tests.life.engine import Engine

    run = _run(project)
    env = _function_env(run)
    targets, sm = load_targets(env), moto.client("secretsmanager")
    kept = load_kept(env, targets)
    invocation = next(r for r in run.resources if r.type == "aws:lambda/invocation:Invocation")
    engine = Engine(sm, {r.inputs["kmsKeyId"]: None for r in run.resources if r.inputs.get("kmsKeyId")})
    with moto_keeps_version_values():
        assert [s.op for s in engine.up(run.resources)] == ["create"]  # the Secret only: no version, no random
        assert make_first_value(json.loads(invocation.inputs["input"]), sm, targets, kept)["written"] is True
        first = json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"])
        assert set(first) == {"signatureSecret"}

        # Not put yet, although the secret has a value now: the function's write is not a put.
        due = ops("due", "--stack", "staging", "--project-dir", str(project))
        assert due.code == 1 and "not put yet" in due.out and "buli2 apiKey" in due.out, due.out + due.err

        api_key = moto.value(24)
        moto.planted.add(first["signatureSecret"])
        result = _put(ops, project, "buli2", "apiKey", value=api_key)
        assert result.code == 0, result.err
        assert "kept signatureSecret" in result.out
        stored = json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"])
        assert stored == {"signatureSecret": first["signatureSecret"], "apiKey": api_key}
        assert "not put yet" not in ops("due", "--stack", "staging", "--project-dir", str(project)).out

        assert engine.refresh() == [] and engine.up(run.resources) == []
        assert make_first_value(json.loads(invocation.inputs["input"]), sm, targets, kept)["written"] is False
        assert json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"]) == stored

        # After a leak, the function cannot read apiKey: it refuses to replace, naming `ops put`, and so does ops.
        with pytest.raises(RotationError, match="ops put") as caught:
            make_first_value({"FirstValue": FULL, "Replace": True}, sm, targets, kept)
        assert "apiKey" in str(caught.value) and len(str(caught.value).splitlines()) == 1
        leaked = ops("rotate", "--leaked", "buli2", "--stack", "staging", "--project-dir", str(project), "--yes")
        assert leaked.code == 2 and "ops put" in leaked.err and len(leaked.err.strip().splitlines()) == 1, leaked.err
        assert json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"]) == stored


def test_a_put_before_the_function_ran_is_refused_and_the_function_still_writes(
        moto: Moto, ops: Callable[..., Result], project: Path) -> None:
    """The function writes only into an empty secret: a put first would leave signatureSecret missing for good.
    So `ops put` refuses while the secret is empty, naming the deploy; nothing is written, and the function's
    run afterwards writes its key."""
    env = _function_env(_run(project))
    targets = load_targets(env)
    sm = moto.client("secretsmanager")
    sm.create_secret(Name=FULL)  # as `pulumi up` leaves it before the Invocation ran
    result = _put(ops, project, "buli2", "apiKey", value=moto.value(24))
    assert result.code == 2 and "pulumi up --stack staging" in result.err and "signatureSecret" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "AWSCURRENT" not in str(sm.describe_secret(SecretId=FULL).get("VersionIdsToStages") or {})
    assert make_first_value({"FirstValue": FULL}, sm, targets, load_kept(env, targets))["written"] is True
    assert sm.describe_secret(SecretId=FULL)["VersionIdsToStages"] == {first_token(FULL): ["AWSCURRENT"]}


def test_a_current_value_without_the_generated_key_is_refused(moto: Moto, ops: Callable[..., Result],
                                                              project: Path) -> None:
    """A value written by hand without signatureSecret: the function will never add it (it writes only into an
    empty secret), so a put would hide the gap; refused, nothing written."""
    sm = moto.client("secretsmanager")
    sm.create_secret(Name=FULL, SecretString=json.dumps({"other": "x"}))
    before = sm.describe_secret(SecretId=FULL)["VersionIdsToStages"]
    result = _put(ops, project, "buli2", "apiKey", value=moto.value(24))
    assert result.code == 2 and "lacks signatureSecret" in result.err and len(result.err.strip().splitlines()) == 1
    assert sm.describe_secret(SecretId=FULL)["VersionIdsToStages"] == before


def test_the_generated_key_is_not_put(moto: Moto, ops: Callable[..., Result], project: Path) -> None:
    moto.client("secretsmanager").create_secret(Name=FULL)
    result = _put(ops, project, "buli2", "signatureSecret", value=moto.value(24))
    assert result.code == 2 and "generated by the first-value function" in result.err
    assert "'keys.signatureSecret'" in result.err and len(result.err.strip().splitlines()) == 1


def test_envcheck_names_ops_put_for_the_put_key_only(project: Path, ops: Callable[..., Result],
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    env_file = tmp_path_factory.mktemp("env") / ".env"
    env_file.write_text("")
    result = ops("check-env", "--stack", "staging", "--project-dir", str(project), "--env-file", str(env_file))
    lines = {line.split()[1]: line for line in result.out.splitlines() if "BULI2" in line}
    assert "ops put" in lines["BULI2_API_KEY"] and "ops put" not in lines["BULI2_SIGNATURE_SECRET"], result.out


@pytest.mark.parametrize(("text", "words"), [
    ("not json", "not valid JSON"),
    ('["shop/staging/buli2"]', "JSON object"),
    ('{"shop/staging/other": ["apiKey"]}', "FIRST_VALUE_KEPT['shop/staging/other']"),
    ('{"shop/staging/buli2": ["signatureSecret"]}', "does not generate"),
    ('{"shop/staging/buli2": []}', "must list keys"),
    ('{"shop/staging/buli2": [1]}', "must list keys"),
])
def test_a_bad_kept_list_is_refused(text: str, words: str) -> None:
    targets = load_targets({"FIRST_VALUE_TARGETS": json.dumps({FULL: {"signatureSecret": {
        "kind": "bytes", "bytes": 32, "encoding": "base64"}}})})
    with pytest.raises(FunctionConfigurationError, match=None) as caught:
        load_kept({"FIRST_VALUE_KEPT": text}, targets)
    assert words in str(caught.value)


@pytest.mark.parametrize(("key", "field"), [
    ("url: {env: BULI2_URL, template: 'https://x.example/{apiKey}'}", "keys.url"),
    ("host: {env: BULI2_HOST, config: {default: api.example.com}}", "keys.host"),
    ("token: {env: BULI2_TOKEN, external: {}}", "keys.token"),
])
def test_a_mixed_secret_with_a_value_the_program_writes_is_refused(project: Path, key: str, field: str) -> None:
    from components.catalog import load_catalog

    (project / "catalog.yaml").write_text(CATALOG + f"      {key}\n")
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(project / "catalog.yaml")
    assert (caught.value.secret, caught.value.field) == ("buli2", field)
    assert str(caught.value).startswith(str(project / "catalog.yaml")) and len(str(caught.value).splitlines()) == 1


def test_a_deployed_secret_whose_supplied_key_moves_to_ops_put_keeps_its_value(
        moto: Moto, ops: Callable[..., Result], project: Path) -> None:
    """The team's step on a deployed stack (filot's buli2 today): apiKey from `pulumi config set --secret`, then
    marked `put: ops` and removed from the config. The next up deletes the random resource and the version from
    the state only (the version is retained on delete: tests/life/engine.py plays pulumi/pulumi's DeleteStep), so
    AWSCURRENT keeps both keys; the function finds it and writes nothing; `ops due` sees apiKey as put; a later
    `ops put` replaces apiKey and keeps signatureSecret."""
    from tests.life.engine import Engine

    (project / "catalog.yaml").write_text(CATALOG.replace("external: {put: ops}", "external: {}"))
    config = load_stack_config(project, "staging")
    old_key = moto.value(24)
    config.values["secrets-platform:buli2ApiKey"] = old_key
    config.secret_keys.append("secrets-platform:buli2ApiKey")
    before = run_program(config, project, str(REPO / "__main__.py"))
    sm = moto.client("secretsmanager")
    engine = Engine(sm, {r.inputs["kmsKeyId"]: None for r in before.resources if r.inputs.get("kmsKeyId")})
    with moto_keeps_version_values():
        assert sorted(s.op for s in engine.up(before.resources)) == ["create", "create", "create"]
        deployed = json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"])
        assert deployed["apiKey"] == old_key
        moto.planted.add(deployed["signatureSecret"])
        labels = sm.describe_secret(SecretId=FULL)["VersionIdsToStages"]

        (project / "catalog.yaml").write_text(CATALOG)
        after = _run(project)
        steps = engine.up(after.resources)
        # The random resource, the version (retained: no provider Delete) and the Secret's new `first-value` tag.
        assert sorted((s.op, s.urn.rsplit("::", 1)[0].rsplit("$", 1)[-1], s.retained) for s in steps) == [
            ("delete", "aws:secretsmanager/secretVersion:SecretVersion", True),
            ("delete", "random:index/randomBytes:RandomBytes", False),
            ("update", "aws:secretsmanager/secret:Secret", False)]
        assert sm.describe_secret(SecretId=FULL)["VersionIdsToStages"] == labels
        env = _function_env(after)
        targets = load_targets(env)
        assert make_first_value({"FirstValue": FULL}, sm, targets, load_kept(env, targets))["written"] is False
        assert "not put yet" not in ops("due", "--stack", "staging", "--project-dir", str(project)).out

        new_key = moto.value(24)
        assert _put(ops, project, "buli2", "apiKey", value=new_key).code == 0
        stored = json.loads(sm.get_secret_value(SecretId=FULL, VersionStage="AWSCURRENT")["SecretString"])
        assert stored == {"apiKey": new_key, "signatureSecret": deployed["signatureSecret"]}
        assert engine.refresh() == [] and engine.up(after.resources) == []


def test_the_policy_pack_accepts_the_stack(make_project: Callable[..., Path]) -> None:
    """Production's config, mandatory rules: the empty secret, the function that writes the generated key only and
    its Invocation pass the same pack `pulumi up` runs."""
    from preview.cli import preview
    from tests.test_first_value_function import STACK as PRODUCTION

    project = make_project(CATALOG, PRODUCTION, stack="production")
    current_build(project)
    report = preview("production", project, policy_config=REPO / "policies" / "config" / "production.json")
    report.wait()
    assert [r for r in report.run.resources if r.type == "aws:lambda/invocation:Invocation"]
    assert not [r for r in report.run.resources if r.type.startswith("random:")]
    assert report.violations == [], [v.message for v in report.violations]


def test_rotate_names_ops_put_for_the_put_key_and_no_leaked_replace(moto: Moto, ops: Callable[..., Result],
                                                                    project: Path) -> None:
    """`ops rotate` of a secret no function rotates says how to replace each part: `ops put` for apiKey (not
    `pulumi config set`, which the program refuses for it), and not `rotate --leaked`, which refuses it."""
    moto.client("secretsmanager").create_secret(Name=FULL)
    result = ops("rotate", "buli2", "--stack", "staging", "--project-dir", str(project))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "python -m ops put --stack staging buli2 <key>` (apiKey)" in result.err
    assert "pulumi config set" not in result.err and "--leaked" not in result.err, result.err
