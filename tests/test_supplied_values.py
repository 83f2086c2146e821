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
