"""A credential written as a catalog `default` of a plain config value is refused by the program.

The catalog is committed in plain text and a default reaches every stack that does not set the key; the
policy pack only flagged the stored literal (advisory in staging). The program stops with one line naming
the catalog, the secret and the field, exit 2, and never quotes the value (components/values.py,
check_literal_defaults).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from preview.cli import main
from tests.conftest import MINIMAL_STACK
from tests.test_errors import GOOD


def catalog_with(key: str, default: str, env: str = "SERVICE_SETTING") -> str:
    return GOOD + f"""\
  service:
    description: A service's settings
    class: configuration
    rotation: manual
    keys:
      host:
        env: SERVICE_HOST
        config: {{default: "service.internal"}}
      {key}:
        env: {env}
        config: {{default: "{default}"}}
"""


def run(project: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["staging", "--project-dir", str(project), "--no-policies"], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


PASSWORD = secrets.token_urlsafe(18)
"""Made at run time: no value in the repository."""


@pytest.mark.parametrize(("key", "default", "why"), [
    ("password", PASSWORD, "'password' names a credential"),
    ("clientSecret", PASSWORD, "'clientSecret' names a credential"),
    ("api_key", PASSWORD, "'api_key' names a credential"),
    ("accessToken", PASSWORD, "'accessToken' names a credential"),
    ("dsn", f"postgres://app:{PASSWORD}@db.internal:5432/app", "a URL with a password"),
], ids=["password", "client-secret", "api-key", "access-token", "url-with-password"])
def test_a_credential_default_is_refused(make_project: Callable[..., Path], key: str, default: str, why: str) -> None:
    code, out, err = run(make_project(catalog_with(key, default), MINIMAL_STACK))
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
    assert f"catalog.yaml, secret 'service', field 'keys.{key}.config.default'" in lines[0]
    assert why in lines[0] and "external" in lines[0]
    assert PASSWORD not in err


@pytest.mark.parametrize(("key", "default", "env"), [
    ("tokenUrl", "https://auth.example.com/oauth/token", "SERVICE_TOKEN_URL"),
    ("maxTokens", "1000", "SERVICE_MAX_TOKENS"),
    ("passwordRequired", "true", "SERVICE_PASSWORD_REQUIRED"),
    ("kid", "key-2024", "SERVICE_TOKEN_KID"),  # the variable says token, the key is an id
    ("tokenizer", "cl100k_base", "SERVICE_TOKENIZER"),  # words, not substrings
    ("bypassMode", "strict", "SERVICE_BYPASS_MODE"),
], ids=["plain-url", "number", "flag", "key-id", "tokenizer", "bypass"])
def test_settings_under_such_names_are_accepted(make_project: Callable[..., Path], key: str, default: str,
                                                env: str) -> None:
    code, _, err = run(make_project(catalog_with(key, default, env), MINIMAL_STACK))
    assert code == 0, err
