"""Supplied values (components/values.py): a placeholder anywhere in a value is refused, and so is a value
shorter than its class allows; the message names the kind of problem, never the value.

The markers are built at run time from pieces, so no test line holds a value that looks real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from components.values import MIN_SUPPLIED_LENGTH, MissingValue, placeholder_problem
from tests.conftest import MINIMAL_STACK, REPO

FILLER = "q7Rt2Lm9Xv4Bn8Kd"
"""16 characters with no marker in them: long enough for a critical value on its own."""


@pytest.mark.parametrize(("value", "what"), [
    # Markers in the middle of a value (the placeholders people leave inside URLs and keys).
    ("https://" + "<host>" + "/api/v1/" + FILLER, "'<...>' placeholder"),
    ("my-" + "changeme" + "-token-" + FILLER, "'changeme'"),
    ("sk_live_" + "YOUR_KEY_HERE" + FILLER, "'YOUR_..._HERE' placeholder"),
    (FILLER + "your_api_key_here", "'YOUR_..._HERE' placeholder"),
    (FILLER + "-your-token-here", "'YOUR_..._HERE' placeholder"),
    ("Your_" + "Api_Key", "'YOUR_..._HERE' placeholder"),  # any case where the value starts with it
    (FILLER + "-change_me-" + FILLER, "'changeme'"),
    (FILLER + "Change Me" + FILLER, "'changeme'"),
    # Anchored markers: a development value, a bare placeholder word.
    ("dev-" + FILLER, "development value"),
    ("DEV_" + FILLER, "development value"),
    ("Placeholder", "placeholder word"),
    ("XXXX", "placeholder word"),
    ("Replace-Me", "placeholder word"),
])
def test_a_marker_anywhere_in_a_value_is_refused(value: str, what: str) -> None:
    for secret_class in ("critical", "configuration"):
        problem = placeholder_problem(value, secret_class)
        assert problem is not None, f"not refused: {what}"
        assert what in problem
        assert problem.endswith("not a real value")
        assert value not in problem, "the message must not repeat the value"


@pytest.mark.parametrize("value", [
    FILLER,
    "https://api.payments.example.net/" + FILLER,
    "prod-dev-" + FILLER,  # 'dev-' only counts at the start
    FILLER + "-testing",  # the placeholder words only count as the whole value
    "a" + "password" + FILLER,
    # Random url-safe tokens hold `yOuR_` in mixed case now and then: only one case throughout is a marker.
    FILLER + "yOuR_" + FILLER + "HerE",
    FILLER + "_YOUR-" + FILLER,
])
def test_real_looking_values_pass(value: str) -> None:
    assert placeholder_problem(value, "critical") is None
    assert placeholder_problem(value, "configuration") is None


def test_a_critical_value_needs_sixteen_characters() -> None:
    assert MIN_SUPPLIED_LENGTH == {"critical": 16, "configuration": 1}
    assert placeholder_problem(FILLER, "critical") is None
    short = FILLER[:15]
    assert placeholder_problem(short, "critical") == (
        "the value has 15 characters; a critical value needs at least 16")
    # Surrounding blanks do not count towards the length.
    assert placeholder_problem(f"  {short}\n", "critical") == (
        "the value has 15 characters; a critical value needs at least 16")
    assert placeholder_problem(short, "configuration") is None


def test_a_configuration_value_needs_one_character() -> None:
    assert placeholder_problem("x", "configuration") is None
    assert placeholder_problem("   ", "configuration") == (
        "the value has 0 characters; a configuration value needs at least 1")
    assert placeholder_problem("", "configuration") == (
        "the value has 0 characters; a configuration value needs at least 1")


def test_the_command_for_a_missing_value() -> None:
    secret = MissingValue("payments", "apiKey", "paymentsApiKey", required=True)
    assert secret.command == "pulumi config set --secret secrets-platform:paymentsApiKey --stack <stack>"
    plain = MissingValue("payments", "endpoint", "paymentsEndpoint", required=False, secret_value=False)
    assert plain.command == "pulumi config set secrets-platform:paymentsEndpoint <value> --stack <stack>"


CATALOG = """\
app: shop
owner: platform
secrets:
  payments:
    description: Payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    keys:
      apiKey: {env: PAYMENTS_API_KEY, external: {}}
      endpoint: {env: PAYMENTS_ENDPOINT, config: {default: "https://api.payments.example.net"}}
"""


@pytest.mark.parametrize(("value", "fragment"), [
    ("sk_live_" + "YOUR_KEY_HERE" + FILLER, "'YOUR_..._HERE' placeholder"),
    (FILLER[:15], "needs at least 16"),
])
def test_the_program_refuses_such_an_external_value_before_any_resource(
    make_project: Callable[..., Path], value: str, fragment: str,
) -> None:
    from components.errors import ConfigurationError
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    project = make_project(CATALOG, MINIMAL_STACK)
    stack = load_stack_config(project, "staging")
    stack.values["secrets-platform:paymentsApiKey"] = value
    stack.secret_keys.append("secrets-platform:paymentsApiKey")
    with pytest.raises(ConfigurationError) as caught:
        run_program(stack, project, str(REPO / "__main__.py"))
    message = str(caught.value)
    assert "secret 'payments'" in message and "field 'secrets-platform:paymentsApiKey'" in message
    assert fragment in message
    assert value not in message
    assert caught.value.registered == 0


# --- read_supplied through the program: what is read, what is listed as missing, what is refused -----

READ = """\
app: shop
owner: platform
secrets:
  payments:
    description: Payment provider
    class: critical
    rotation: on-compromise
    rotation_reason: issued by the payment provider
    keys:
      apiKey: {env: PAYMENTS_API_KEY, external: {config: paymentsKey}}
      webhookKey: {env: PAYMENTS_WEBHOOK_KEY, external: {}, required: false}
      endpoint: {env: PAYMENTS_ENDPOINT, config: {config: paymentsHost}}
      region: {env: PAYMENTS_REGION, config: {}, required: false}
      retries: {env: PAYMENTS_RETRIES, config: {default: "3"}, type: integer}
      live: {env: PAYMENTS_LIVE, config: {}, type: boolean}
"""

READ_STACK = MINIMAL_STACK + """\
  secrets-platform:paymentsHost: https://api.payments.example.net
  secrets-platform:paymentsLive: "TRUE"
"""


def _run(make_project: Callable[..., Path], config: str, values: dict[str, str] | None = None,
         allow_missing: bool = True):  # type: ignore[no-untyped-def]
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    project = make_project(READ, config)
    stack = load_stack_config(project, "staging")
    if allow_missing:
        stack.values["secrets-platform:allowMissingValues"] = "true"
    for key, value in (values or {}).items():
        stack.values[f"secrets-platform:{key}"] = value
        stack.secret_keys.append(f"secrets-platform:{key}")
    return run_program(stack, project, str(REPO / "__main__.py"))


def test_unset_values_are_listed_with_their_own_config_keys(make_project: Callable[..., Path]) -> None:
    run = _run(make_project, READ_STACK)
    assert run.outputs["actionRequired"] == [
        {"secret": "payments", "key": "apiKey", "configKey": "paymentsKey", "required": True,
         "command": "pulumi config set --secret secrets-platform:paymentsKey --stack staging"},
        {"secret": "payments", "key": "webhookKey", "configKey": "paymentsWebhookKey", "required": False,
         "command": "pulumi config set --secret secrets-platform:paymentsWebhookKey --stack staging"},
        {"secret": "payments", "key": "region", "configKey": "paymentsRegion", "required": False,
         "command": "pulumi config set secrets-platform:paymentsRegion <value> --stack staging"},
    ]


def test_set_values_reach_the_secret_typed_and_secret(make_project: Callable[..., Path]) -> None:
    import json

    from preview.model import plain

    key, webhook = FILLER + "a1", FILLER + "b2"
    run = _run(make_project, READ_STACK + "  secrets-platform:paymentsRegion: eu-west-1\n",
               {"paymentsKey": key, "paymentsWebhookKey": webhook})
    assert run.outputs["actionRequired"] == []
    (version,) = [r for r in run.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert json.loads(plain(version.inputs["secretString"])) == {
        "apiKey": key, "webhookKey": webhook, "endpoint": "https://api.payments.example.net",
        "region": "eu-west-1", "retries": 3, "live": True,
    }


def test_an_optional_external_value_left_unset_still_stores_the_rest(make_project: Callable[..., Path]) -> None:
    import json

    from preview.model import plain

    run = _run(make_project, READ_STACK, {"paymentsKey": FILLER})
    assert [gap["key"] for gap in run.outputs["actionRequired"]] == ["webhookKey", "region"]
    (version,) = [r for r in run.resources if r.type == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert json.loads(plain(version.inputs["secretString"])) == {
        "apiKey": FILLER, "endpoint": "https://api.payments.example.net", "retries": 3, "live": True}


@pytest.mark.parametrize(("config", "values", "allow_missing", "line"), [
    (READ_STACK, {}, False,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsKey': the external value is not "
     "set; set it with `pulumi config set --secret secrets-platform:paymentsKey --stack staging`"),
    (READ_STACK + "  secrets-platform:paymentsKey: " + FILLER + "\n", {}, True,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsKey': an external secret value is "
     "set in plain text; remove it from the file and set it with `pulumi config set --secret "
     "secrets-platform:paymentsKey --stack staging`"),
    (MINIMAL_STACK + '  secrets-platform:paymentsLive: "true"\n', {}, True,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsHost': not set; set it with "
     "`pulumi config set secrets-platform:paymentsHost <value> --stack staging`"),
    (READ_STACK + '  secrets-platform:paymentsRetries: "three"\n', {}, True,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsRetries': 'three' is not a whole "
     "number"),
    (READ_STACK.replace("https://api.payments.example.net", "https://<host>/api"), {}, True,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsHost': the value is a '<...>' "
     "placeholder, not a real value"),
    (READ_STACK, {"paymentsKey": "dev-" + FILLER}, True,
     "Pulumi.staging.yaml, secret 'payments', field 'secrets-platform:paymentsKey': the value is a development "
     "value ('dev-...'), not a real value"),
], ids=["required-unset", "plain-text", "config-unset", "not-a-number", "config-placeholder", "external-dev"])
def test_each_refusal_is_one_exact_line(make_project: Callable[..., Path], config: str, values: dict[str, str],
                                        allow_missing: bool, line: str) -> None:
    from components.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        _run(make_project, config, values, allow_missing)
    assert str(caught.value) == line
    assert caught.value.registered == 0
