# ruff: noqa: E501  (tables of cases: one case a line reads better than wrapped ones)
"""The adversarial corpus of `python -m ops`: hostile files, arguments and endpoints.

Each case asserts one rule:
- a value planted in an input (a canary made at run time, in every form an input can hold it) appears
  in no output: stdout, stderr, or any file the command wrote;
- bad input ends with exit status 2 and one line naming the file (or argument) and the field, no traceback;
- nothing is written outside `--out`, and no symbolic link is followed;
- an endpoint that never answers, never ends a listing, or answers with a shape the API never has, ends
  the command within a bound (timeouts: ops/aws.py; every case also has pytest-timeout's 90 s cap).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import secrets
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile_servers import answering_server, silent_server
from ops_harness import Moto, Result
from test_ops_due import CATALOG as DUE_CATALOG
from test_ops_due import STACK as DUE_STACK

import ops.aws
from ops.cli import main
from ops.inputs import INPUT_MAX_BYTES, is_name

Run = Callable[..., Result]
pytestmark = pytest.mark.timeout(90)
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:{}-AbCdEf"


def token() -> str:
    """A credential's shape (GitHub's `ghp_` + 36 letters and digits), made now: a canary."""
    return "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))


def hex_token() -> str:
    return "k" + secrets.token_hex(20)


@dataclass
class Planted:
    """The canaries of one case, and every text the command produced or wrote."""

    canaries: list[str]

    def new(self, make: Callable[[], str] = token) -> str:
        value = make()
        self.canaries.append(value)
        return value


def run(argv: list[str]) -> tuple[Result, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = main(argv, out=out, err=err, stdin=io.StringIO(""))
    return Result(code, out.getvalue(), err.getvalue()), time.monotonic() - started


def written(root: Path) -> str:
    """Every file under `root` (links not followed), as text."""
    texts = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def one_line(result: Result, *needles: str) -> str:
    assert result.code == 2, result.text[-2000:]
    assert "Traceback" not in result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- 1. values planted in every form a dotenv or compose file can hold them ------------------------------

DOTENV_FORMS: dict[str, Callable[[Planted], str]] = {
    "token-alone": lambda p: f"GOOD=1\n{p.new()}\n",
    "hex-alone": lambda p: f"GOOD=1\n{p.new(hex_token)}\n",
    "token-as-name": lambda p: f"{p.new()}=1\nGOOD=1\n",
    "hex-as-name": lambda p: f"{p.new(hex_token)}=\nGOOD=1\n",
    "token-export": lambda p: f"export {p.new()}\nGOOD=1\n",
    "token-export-name": lambda p: f"export {p.new()}=x\nGOOD=1\n",
    "token-in-line": lambda p: f"GOOD=1\n{p.new()} is pasted here\n",
    "token-yaml-style": lambda p: f"GOOD=1\nAPI_KEY: {p.new()}\n",
    "token-colon-name": lambda p: f"GOOD=1\n{p.new()}:x=1\n",
    "from-token": lambda p: f"# from {p.new()}\nGOOD=1\n",
    "from-token-secret": lambda p: f"# from shop/staging/{p.new()}\nGOOD=1\n",
    "from-hex-secret": lambda p: f"# from shop/staging/{p.new(hex_token)}\nGOOD=1\n",
    "from-token-key": lambda p: f"# from shop/staging/redis ({p.new()})\nGOOD=1\n",
    "from-token-app": lambda p: f"# from {p.new(hex_token)}/staging/redis\nGOOD=1\n",
    "from-token-two-parts": lambda p: f"# from {p.new()}/redis\nGOOD=1\n",
    "from-garbage": lambda p: f"#from {p.new()} trailing words\nGOOD=1\n",
    "comment-token": lambda p: f"# {p.new()}\nGOOD=1\n",
    "quoted-key-newline": lambda p: f"'A\n{p.new()}'=x\nGOOD=1\n",
    "quoted-key-newline-col0": lambda p: f"'A\nsecrets:\n  {p.new()}: {{}}'=x\nGOOD=1\n",
    "double-quoted-key": lambda p: f"\"{p.new()}\"=x\nGOOD=1\n",
    "long-name": lambda p: f"A{'B' * 130}{p.new(lambda: secrets.token_hex(8).upper())}=1\nGOOD=1\n",
    "value-plain": lambda p: f"API_KEY={p.new()}\n",
    "value-quoted": lambda p: f"API_KEY='{p.new()}'\n",
    "value-multiline": lambda p: f"PEM=\"line\n{p.new()}\n\"\nGOOD=1\n",
    "value-url": lambda p: f"DATABASE_URL=postgres://app:{p.new()}@db.internal:5432/app\n",
    "value-url-user": lambda p: f"REDIS_URL=redis://{p.new()}:pw@cache:6379\n",
    "value-inline-comment": lambda p: f"API_TOKEN=x # {p.new()}\n",
    "value-placeholder-like": lambda p: f"API_TOKEN=<{p.new()}>\n",
    "shadow-lines": lambda p: f"root:{p.new()}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nGOOD=1\n",
    "crlf": lambda p: f"GOOD=1\r\n{p.new()}\r\nAPI_KEY={p.new()}\r\n",
    "bom": lambda p: f"\ufeffGOOD=1\n{p.new()}\n",
    "tab-key": lambda p: f"\t{p.new()}\t=1\nGOOD=1\n",
    "unicode-name": lambda p: f"ÄPI_{p.new()}=1\nGOOD=1\n",
}


@pytest.mark.parametrize("form", DOTENV_FORMS, ids=list(DOTENV_FORMS))
def test_a_dotenv_copies_names_never_values(form: str, tmp_path: Path, moto: Moto) -> None:
    planted = Planted([])
    env = tmp_path / ".env"
    env.write_text(DOTENV_FORMS[form](planted), encoding="utf-8")
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env),
                     "--out", str(tmp_path / "out")])
    assert result.code in (0, 2), result.text
    produced = result.text + written(tmp_path / "out")
    leaked = sum(1 for c in planted.canaries if c in produced)
    assert leaked == 0, f"{leaked} planted value(s) appear in the output or the draft"
    assert "Traceback" not in result.text
    if result.code == 0:
        # The draft stays YAML with the top level the catalog has: no injected line at column 0.
        catalog = (tmp_path / "out" / "catalog.yaml").read_text()
        tops = {line.split(":")[0] for line in catalog.splitlines() if line[:1].isalpha()}
        assert tops <= {"app", "owner", "environments", "secrets"}, tops


COMPOSE_FORMS: dict[str, Callable[[Planted], str]] = {
    "env-list-mapping": lambda p: f"services:\n  api:\n    environment:\n      - GOOD=1\n      - API_KEY: {p.new()}\n",
    "env-list-mapping-name": lambda p: f"services:\n  api:\n    environment:\n      - GOOD=1\n      - {p.new()}: x\n",
    "env-list-bare-token": lambda p: f"services:\n  api:\n    environment:\n      - GOOD=1\n      - {p.new()}\n",
    "env-list-token-name": lambda p: f"services:\n  api:\n    environment:\n      - GOOD=1\n      - {p.new(hex_token)}=x\n",
    "env-list-number": lambda p: "services:\n  api:\n    environment:\n      - GOOD=1\n      - 12345\n",
    "env-list-nested": lambda p: f"services:\n  api:\n    environment:\n      - GOOD=1\n      - [{p.new()}]\n",
    "env-map-token-name": lambda p: f"services:\n  api:\n    environment:\n      GOOD: 1\n      {p.new()}: x\n",
    "env-map-newline-name": lambda p: f"services:\n  api:\n    environment:\n      GOOD: 1\n      \"A\\nsecrets:\\n  {p.new()}\": x\n",
    "env-map-value": lambda p: f"services:\n  api:\n    environment:\n      API_KEY: {p.new()}\n",
    "env-map-nested-value": lambda p: f"services:\n  api:\n    environment:\n      API_KEY: {{a: {p.new()}}}\n",
    "env-list-value": lambda p: f"services:\n  api:\n    environment:\n      - API_KEY={p.new()}\n",
    "service-token": lambda p: f"services:\n  {p.new()}:\n    environment: [GOOD=1]\n  api:\n    environment: [OTHER=1]\n",
    "service-newline": lambda p: f"services:\n  \"a\\n{p.new()}\":\n    environment: [GOOD=1]\n  api:\n    environment: [OTHER=1]\n",
    "secret-token": lambda p: f"services:\n  api:\n    environment: [GOOD=1]\n    secrets: [{p.new()}]\n",
    "secret-source-token": lambda p: f"services:\n  api:\n    environment: [GOOD=1]\n    secrets: [{{source: {p.new()}, target: t}}]\n",
    "secret-newline": lambda p: f"services:\n  api:\n    environment: [GOOD=1]\n    secrets: [\"a\\n{p.new()}\"]\n",
    "top-secrets-file": lambda p: f"services:\n  api:\n    environment: [GOOD=1]\nsecrets:\n  s:\n    environment: {p.new()}\n",
    "yaml-duplicate-key": lambda p: f"services:\n  api:\n    environment: [GOOD=1]\n{(t := p.new())}: 1\n{t}: 2\n",
    "yaml-unknown-tag": lambda p: f"services: !{p.new()} {{}}\n",
    "yaml-unknown-alias": lambda p: f"services: {{api: {{environment: [*{p.new()}]}}}}\n",
    "yaml-broken": lambda p: f"services: {{api: {{environment: [{p.new()}\n",
}


@pytest.mark.parametrize("form", COMPOSE_FORMS, ids=list(COMPOSE_FORMS))
def test_a_compose_file_copies_names_never_values(form: str, tmp_path: Path, moto: Moto) -> None:
    planted = Planted([])
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE_FORMS[form](planted), encoding="utf-8")
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--compose", str(compose),
                     "--out", str(tmp_path / "out")])
    assert result.code in (0, 2), result.text
    assert "Traceback" not in result.text
    if result.code == 2:
        one_line(result, str(compose))
    produced = result.text + written(tmp_path / "out")
    leaked = sum(1 for c in planted.canaries if c in produced)
    assert leaked == 0, f"{leaked} planted value(s) appear in the output or the draft"


COMPOSE_TYPES: dict[str, tuple[str, str]] = {
    "secrets-number": ("services:\n  api:\n    secrets: 5\n", "field 'services.api.secrets'"),
    "secrets-mapping": ("services:\n  api:\n    secrets: {a: b}\n", "field 'services.api.secrets'"),
    "secrets-text": ("services:\n  api:\n    secrets: stripe\n", "field 'services.api.secrets'"),
    "environment-number": ("services:\n  api:\n    environment: 5\n", "field 'services.api.environment'"),
    "environment-text": ("services:\n  api:\n    environment: A=1\n", "field 'services.api.environment'"),
    "service-list": ("services:\n  api: [a]\n", "field 'services.api'"),
    "services-list": ("services: [api]\n", "field 'services'"),
    "no-services": ("version: '3'\n", "field 'services'"),
    "document-list": ("- services\n", "field 'services'"),
    "empty": ("", "field 'services'"),
    "alias-bomb": ("services:\n  api:\n    environment:\n      - &l0 [A, A, A, A, A, A, A, A, A]\n" + "".join(
        f"      - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10)), "aliases"),
}


@pytest.mark.parametrize("case", COMPOSE_TYPES, ids=list(COMPOSE_TYPES))
def test_a_compose_field_of_the_wrong_type_is_one_line(case: str, tmp_path: Path, moto: Moto) -> None:
    text, where = COMPOSE_TYPES[case]
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(text)
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--compose", str(compose),
                     "--out", str(tmp_path / "out")])
    one_line(result, str(compose), where)
    assert not (tmp_path / "out").exists()


def test_an_env_file_linked_to_the_shadow_file_copies_none_of_its_lines(tmp_path: Path, moto: Moto) -> None:
    """A link is resolved and its target read if it is a regular file, but only names are copied: a line
    of /etc/shadow (`root:<hash>:...`) is no NAME=value line. Where /etc/shadow cannot be read, a file of
    its shape with planted hashes stands in."""
    shadow = Path("/etc/shadow")
    if not os.access(shadow, os.R_OK):
        shadow = tmp_path / "shadow"
        shadow.write_text("".join(f"user{i}:$6${secrets.token_hex(8)}${token()}:19000:0:99999:7:::\n" for i in range(5)))
    link = tmp_path / ".env"
    link.symlink_to(shadow)
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(link),
                     "--out", str(tmp_path / "out")])
    produced = result.text + (written(tmp_path / "out") if (tmp_path / "out").exists() else "")
    fields = {f for line in shadow.read_text().splitlines() for f in line.split(":") if len(f) >= 8}
    assert not [line for line in shadow.read_text().splitlines() if line and line in produced]
    assert sum(1 for f in fields if f in produced) == 0
    assert result.code == 2 and "no variable or secret found" in result.err  # every line skipped


@pytest.mark.parametrize("where", ["env-file", "compose", "prefix"])
def test_a_path_or_prefix_with_a_newline_stays_on_one_line(where: str, tmp_path: Path, moto: Moto) -> None:
    odd = tmp_path / "a\nsecrets:\n  injected: {}\n.env"
    odd.write_text("API_TOKEN=\n" if where == "env-file" else "services:\n  api:\n    environment: [API_TOKEN=]\n")
    argv = {"env-file": ["--env-file", str(odd)], "compose": ["--compose", str(odd)],
            "prefix": ["--from-aws", "shop/\nsecrets:", "--region", "eu-west-1"]}[where]
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", *argv, "--out", str(tmp_path / "out")])
    if where == "prefix":
        one_line(result, "--from-aws")
        return
    assert result.code == 0, result.text
    catalog = (tmp_path / "out" / "catalog.yaml").read_text()
    assert not [line for line in catalog.splitlines() if line.startswith("  injected")]
    assert not [line for line in result.out.splitlines() if line.startswith("  injected")]


def test_the_whole_command_on_twenty_thousand_variables_ends_under_the_cap(tmp_path: Path, moto: Moto) -> None:
    """The brief's figure: 20,000 APP_* lines ran past 90 s. The catalog is written and read back once."""
    env = tmp_path / ".env"
    env.write_text("".join(f"APP_VAR{i}=\n" for i in range(20_000)))
    result, elapsed = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env),
                           "--out", str(tmp_path / "out")])
    assert result.code == 0, result.err
    assert "Drafted 1 secret(s)" in result.out
    assert elapsed < 90


def test_the_largest_input_accepted_is_drafted_in_bounded_memory(tmp_path: Path) -> None:
    """An input is read whole, so its size cap bounds memory: the largest env file accepted (1 MiB of long
    names) is read and drafted with a peak under 64 MiB of Python allocations (about 9 MiB measured)."""
    import tracemalloc

    from ops import draft
    from ops.inputs import Skipped

    lines, size = [], 0
    while size + 110 <= INPUT_MAX_BYTES:
        lines.append(f"APP_{'X' * 96}{len(lines):06d}=\n")
        size += len(lines[-1])
    env = tmp_path / ".env"
    env.write_text("".join(lines))
    tracemalloc.start()
    try:
        variables = draft.read_dotenv(env, Skipped())
        request = draft.Request(stack="staging", environment="staging", app="shop", owner=None, region=None,
                                account_id=None, catalog_path="catalog.yaml", out_dir=tmp_path / "out",
                                env_files=[env], compose_files=[], prefix=None, read_keys=False, force=False)
        app, drafts = draft.build(request, variables, {}, [])
        draft.render_catalog(request, app, drafts, [str(env)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(variables) == len(lines)
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


def test_skipped_lines_are_counted_by_number(tmp_path: Path, moto: Moto) -> None:
    env = tmp_path / ".env"
    env.write_text(f"GOOD=1\n{token()}\n\n{token()}=x\n# from {token()}\nOTHER=2\n")
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env),
                     "--out", str(tmp_path / "out")])
    assert result.code == 0, result.text
    assert f"3 line(s) or entries skipped in {env} (line 2, 4, 5)" in result.out


def test_every_name_of_the_examples_is_a_name() -> None:
    """The rule drops tokens, not the names real catalogs use: every variable, secret and key name of
    the examples passes it (the full `<app>/<env>/<name>` of a secret is checked by grammar only)."""
    from components.catalog import load_catalog

    root = Path(__file__).resolve().parents[2]
    checked = 0
    for path in [root / "catalog.yaml", *sorted((root / "examples").glob("*/catalog.yaml"))]:
        catalog = load_catalog(path)
        for name, entry in catalog.secrets.items():
            assert is_name(name.replace("-", "_")), (path, name)
            for key, value in entry.values.items():
                assert not key or is_name(key), (path, key)
                for variable in value.env:
                    assert is_name(variable), (path, variable)
                    checked += 1
    assert checked > 100


# --- 1 and 5. inputs that are not regular files, or too large ----------------------------------------------

def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _link(target: str) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / "link.env"
        path.symlink_to(target)
        return path
    return make


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def _large(tmp_path: Path) -> Path:
    path = tmp_path / "large.env"
    path.write_bytes(b"A=1\n" * (INPUT_MAX_BYTES // 4 + 1))
    return path


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary.env"
    path.write_bytes(b"A=1\n\xff\xfe\x00\x00" + secrets.token_bytes(64))
    return path


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "dir.env").mkdir()
    return tmp_path / "dir.env"


def _link_to_large(tmp_path: Path) -> Path:
    target = _large(tmp_path)
    (tmp_path / "via.env").symlink_to(target)
    return tmp_path / "via.env"


NOT_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dev-zero": (lambda _: Path("/dev/zero"), "not a regular file"),
    "dev-urandom": (lambda _: Path("/dev/urandom"), "not a regular file"),
    "dev-null": (lambda _: Path("/dev/null"), "not a regular file"),
    "link-to-dev-zero": (_link("/dev/zero"), "not a regular file"),
    "fifo": (_fifo, "not a regular file"),
    "proc-environ": (lambda _: Path("/proc/self/environ"), "/proc or /sys"),
    "link-to-proc-environ": (_link("/proc/self/environ"), "/proc or /sys"),
    "proc-status": (lambda _: Path("/proc/self/status"), "/proc or /sys"),
    "sys-file": (lambda _: Path("/sys/kernel/mm/transparent_hugepage/enabled"), "cannot read"),
    "directory": (_directory, "not a regular file"),
    "dangling-link": (_link("/nonexistent/for/sure.env"), "cannot read"),
    "link-loop": (_loop, "cannot read"),
    "too-large": (_large, "larger than 1,048,576 bytes"),
    "link-to-too-large": (_link_to_large, "larger than 1,048,576 bytes"),
    "not-utf8": (_binary, "not UTF-8"),
}


@pytest.mark.parametrize("option", ["--env-file", "--compose", "check-env"])
@pytest.mark.parametrize("kind", NOT_FILES, ids=list(NOT_FILES))
def test_an_input_that_is_not_a_regular_file_is_refused(kind: str, option: str, tmp_path: Path, moto: Moto) -> None:
    make, message = NOT_FILES[kind]
    path = make(tmp_path)
    if kind == "sys-file" and not path.exists():
        message = "cannot read"
    if option == "check-env":
        argv = ["check-env", "--stack", "staging", "--env-file", str(path)]
    else:
        argv = ["draft", "--stack", "staging", "--app", "shop", option, str(path), "--out", str(tmp_path / "out")]
    result, elapsed = run(argv)
    line = one_line(result, str(path))
    assert message in line or (kind == "sys-file" and "/proc or /sys" in line), line
    assert elapsed < 30
    assert not (tmp_path / "out").exists(), "nothing is written when an input is refused"


# --- 5 and 6. arguments that name files ----------------------------------------------------------------------

@pytest.mark.parametrize(("stack", "command"), [
    ("a/b", "draft"), ("x/../../escaped", "draft"), ("..", "draft"), (".", "draft"), ("", "draft"),
    ("a\nb", "draft"), ("s" * 101, "draft"), ("org/project/staging", "draft"), ("st ack", "draft"),
    ("a/b", "list"), ("../x", "due"), ("a/b", "check-env"), ("x/../../y", "rotate"),
])
def test_a_stack_that_is_not_a_pulumi_stack_name(stack: str, command: str, tmp_path: Path, moto: Moto) -> None:
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    out = tmp_path / "deep" / "out"
    argv = {"draft": ["draft", "--stack", stack, "--app", "shop", "--env-file", str(env), "--out", str(out)],
            "rotate": ["rotate", "redis", "--stack", stack]}.get(command, [command, "--stack", stack])
    line = one_line(run(argv)[0], "--stack")
    assert "\n" not in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".env"], "nothing written anywhere"


@pytest.mark.parametrize(("option", "value"), [
    ("--app", "shop\nsecrets:"), ("--account-id", "1\n2"), ("--environment", "x\ny"), ("--region", "eu-west-1\n"),
    ("--from-aws", "a/\tb"),
])
def test_an_argument_with_a_control_character_stays_on_one_line(option: str, value: str, tmp_path: Path,
                                                                 moto: Moto) -> None:
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    argv = ["draft", "--stack", "staging", "--env-file", str(env), "--out", str(tmp_path / "out"), option, value]
    if option == "--region":
        argv += ["--from-aws", "shop/staging/"]
    one_line(run(argv)[0], option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("catalog_path", "message"), [
    ("", "--catalog-path"), (".", "--catalog-path"), ("a/../../x.yaml", "--catalog-path"),
    ("/tmp/x.yaml", "--catalog-path"), ("a\nb.yaml", "--catalog-path"), ("sub/", "--catalog-path"),
    ("Pulumi.staging.yaml", "another file of the draft"), ("Pulumi.yaml", "another file of the draft"),
    ("a//b.yaml", "--catalog-path"), ("c$t.yaml", "--catalog-path"),
])
def test_a_catalog_path_that_is_not_a_file_inside_out(catalog_path: str, message: str, tmp_path: Path,
                                                      moto: Moto) -> None:
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env),
                     "--out", str(tmp_path / "out"), "--catalog-path", catalog_path])
    one_line(result, message)
    assert not (tmp_path / "out").exists()


def _draft_into(tmp_path: Path, *extra: str) -> Result:
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    return run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env),
                "--out", str(tmp_path / "out"), *extra])[0]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("target", ["catalog.yaml", "Pulumi.staging.yaml", "Pulumi.yaml"])
def test_a_dangling_link_in_out_is_never_followed(target: str, force: bool, tmp_path: Path, moto: Moto) -> None:
    (tmp_path / "out").mkdir()
    outside = tmp_path / "escaped.yaml"
    (tmp_path / "out" / target).symlink_to(outside)
    result = _draft_into(tmp_path, *(["--force"] if force else []))
    one_line(result, target)
    assert not outside.exists(), "the link was followed"
    assert (tmp_path / "out" / target).is_symlink()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [target], "nothing half-written"


@pytest.mark.parametrize("force", [False, True])
def test_a_link_to_an_existing_file_is_never_written_through(force: bool, tmp_path: Path, moto: Moto) -> None:
    (tmp_path / "out").mkdir()
    outside = tmp_path / "keep.yaml"
    outside.write_text("kept: true\n")
    (tmp_path / "out" / "catalog.yaml").symlink_to(outside)
    one_line(_draft_into(tmp_path, *(["--force"] if force else [])), "catalog.yaml")
    assert outside.read_text() == "kept: true\n"


def test_a_directory_link_inside_out_is_not_a_way_out(tmp_path: Path, moto: Moto) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    one_line(_draft_into(tmp_path, "--catalog-path", "sub/catalog.yaml"), "outside --out")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "under-a-file", "link-to-file"])
def test_out_that_is_not_a_directory(kind: str, tmp_path: Path, moto: Moto) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x\n")
    out = {"file": plain, "under-a-file": plain / "out"}.get(kind, tmp_path / "link")
    if kind == "link-to-file":
        out.symlink_to(plain)
    env = tmp_path / ".env"
    env.write_text("API_TOKEN=\n")
    result, _ = run(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env), "--out", str(out)])
    one_line(result, "--out")
    assert plain.read_text() == "x\n"


def test_force_replaces_a_regular_draft_and_nothing_else(tmp_path: Path, moto: Moto) -> None:
    assert _draft_into(tmp_path).code == 0
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert _draft_into(tmp_path).code == 2
    assert _draft_into(tmp_path, "--force").code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before == [
        "Pulumi.staging.yaml", "Pulumi.yaml", "catalog.yaml"]


# --- 2. endpoints that never answer, or never end a listing ------------------------------------------------

@pytest.fixture
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bounds, made short so that a test of them takes seconds."""
    monkeypatch.setattr(ops.aws, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(ops.aws, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(ops.aws, "MAX_RETRIES", 1)
    monkeypatch.setattr(ops.aws, "MAX_PAGES", 60)


@pytest.fixture
def due_project(make_project: Callable[..., Path]) -> Path:
    return make_project(DUE_CATALOG, DUE_STACK)


def _command(command: str, project: Path, url: str, tmp_path: Path) -> list[str]:
    if command == "draft":
        return ["draft", "--stack", "staging", "--from-aws", "shop/staging/", "--region", "eu-west-1",
                "--endpoint-url", url, "--out", str(tmp_path / "out")]
    return [command, "--stack", "staging", "--project-dir", str(project), "--endpoint-url", url]


def test_the_default_bounds_end_a_call_well_within_90_seconds() -> None:
    client = ops.aws.make_client("eu-west-1", "http://127.0.0.1:9")
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (ops.aws.CONNECT_TIMEOUT, ops.aws.READ_TIMEOUT)
    # botocore turns `max_attempts` (retries) into `total_max_attempts` (the first attempt included).
    assert config.retries == {"total_max_attempts": ops.aws.MAX_RETRIES + 1, "mode": "standard"}
    # Each attempt waits at most connect + read; standard mode waits rand * min(2 ** i, 20) s before retry i
    # (botocore retries/standard.py, ExponentialBackoff; 1 s base for throttling, 50 ms otherwise).
    attempts = ops.aws.MAX_RETRIES + 1
    backoff = sum(min(2 ** i, 20) for i in range(ops.aws.MAX_RETRIES))
    assert attempts * (ops.aws.CONNECT_TIMEOUT + ops.aws.READ_TIMEOUT) + backoff <= 90


@pytest.mark.parametrize("command", ["due", "list", "draft"])
def test_an_endpoint_that_never_answers(command: str, short_bounds: None, due_project: Path, tmp_path: Path,
                                        moto: Moto) -> None:
    with silent_server() as url:
        result, elapsed = run(_command(command, due_project, url, tmp_path))
    line = one_line(result)
    assert "timeout" in line.lower() or "timed out" in line.lower(), line
    assert elapsed < 20, f"{elapsed:.1f} s"


def _endless(operation: str, request: dict[str, Any]) -> Any:
    """A new NextToken on every page, for ever; a secret that exists, whose versions are listed."""
    if operation == "DescribeSecret":
        return {"ARN": ARN.format("shop/staging/partner-key"), "Name": "shop/staging/partner-key",
                "VersionIdsToStages": {"v1": ["AWSCURRENT"]}}
    key = "Versions" if operation == "ListSecretVersionIds" else "SecretList"
    return {key: [], "NextToken": secrets.token_hex(16)}


@pytest.mark.parametrize("command", ["due", "list", "draft"])
def test_an_endpoint_whose_listing_never_ends(command: str, short_bounds: None, due_project: Path, tmp_path: Path,
                                              moto: Moto) -> None:
    with answering_server(_endless) as (url, calls):
        result, elapsed = run(_command(command, due_project, url, tmp_path))
    one_line(result, "more than 60 pages")
    listings = [c for c in calls if c.startswith("List")]
    assert len(listings) == 60
    assert elapsed < 60


@pytest.mark.parametrize("command", ["due", "draft"])
def test_an_endpoint_that_repeats_its_token(command: str, short_bounds: None, due_project: Path, tmp_path: Path,
                                            moto: Moto) -> None:
    def same(operation: str, request: dict[str, Any]) -> Any:
        answer = _endless(operation, request)
        return {**answer, "NextToken": "again"} if "NextToken" in answer else answer

    with answering_server(same) as (url, calls):
        result, _ = run(_command(command, due_project, url, tmp_path))
    one_line(result, "same NextToken twice")
    assert len([c for c in calls if c.startswith("List")]) == 2


# --- 5. answers of a shape the API never has (`ops due`) -------------------------------------------------

def _due_answer(description: dict[str, Any], versions: Any) -> Callable[[str, dict[str, Any]], Any]:
    def answer(operation: str, request: dict[str, Any]) -> Any:
        if operation == "DescribeSecret":
            name = request["SecretId"]
            return {"ARN": ARN.format(name), "Name": name, **description}
        return {"Versions": versions}
    return answer


CURRENT = {"VersionIdsToStages": {"v1": ["AWSCURRENT"]}}
MALFORMED_DUE: dict[str, tuple[dict[str, Any], Any, str]] = {
    "date-9999": (CURRENT, [{"VersionId": "v1", "CreatedDate": 253402300799}], "'CreatedDate'"),
    "date-9999-early": (CURRENT, [{"VersionId": "v1", "CreatedDate": 253402000000}], "'CreatedDate'"),
    "date-1e20": (CURRENT, [{"VersionId": "v1", "CreatedDate": 1e20}], "versions of secret"),
    "date-negative": (CURRENT, [{"VersionId": "v1", "CreatedDate": -1e15}], "versions of secret"),
    "date-text": (CURRENT, [{"VersionId": "v1", "CreatedDate": "tomorrow"}], "versions of secret"),
    "stages-list": ({"VersionIdsToStages": ["AWSCURRENT"]}, [], "secret shop/staging/partner-key"),
    "stages-number": ({"VersionIdsToStages": 5}, [], "secret shop/staging/partner-key"),
    "stages-nested": ({"VersionIdsToStages": {"v1": [["AWSCURRENT"]]}}, [], "'VersionIdsToStages'"),
    "stages-twice": ({"VersionIdsToStages": {"v1": ["AWSCURRENT"], "v2": ["AWSCURRENT"]}}, [], "'VersionIdsToStages'"),
    "versions-map": (CURRENT, {"v1": "x"}, "versions of secret"),
    "versions-number": (CURRENT, 7, "versions of secret"),
}


@pytest.mark.parametrize("case", MALFORMED_DUE, ids=list(MALFORMED_DUE))
def test_due_against_an_answer_of_another_shape(case: str, due_project: Path, tmp_path: Path, moto: Moto) -> None:
    description, versions, where = MALFORMED_DUE[case]
    with answering_server(_due_answer(description, versions)) as (url, _):
        result, _ = run(_command("due", due_project, url, tmp_path))
    one_line(result, where)


@pytest.mark.parametrize("case", MALFORMED_DUE, ids=list(MALFORMED_DUE))
def test_list_against_an_answer_of_another_shape(case: str, due_project: Path, tmp_path: Path, moto: Moto) -> None:
    """`list` shows what it can and never ends in a traceback (a nested stage list raised TypeError)."""
    description, versions, _ = MALFORMED_DUE[case]
    with answering_server(_due_answer(description, versions)) as (url, _):
        result, _ = run(_command("list", due_project, url, tmp_path))
    assert "Traceback" not in result.text
    if result.code != 0:
        one_line(result)


def test_due_against_a_real_shape_still_works(due_project: Path, tmp_path: Path, moto: Moto) -> None:
    """The checks refuse shapes, not dates: a version made 10 days ago is 'ok'."""
    ten_days = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).timestamp()
    with answering_server(_due_answer(CURRENT, [{"VersionId": "v1", "CreatedDate": ten_days}])) as (url, _):
        result, _ = run(_command("due", due_project, url, tmp_path))
    assert result.code == 0, result.text
    assert "OK (in 169 days)" in result.out


# --- 6 and 7. what the endpoint says goes into the draft only once checked ---------------------------------

def _aws_answer(secret: dict[str, Any] | None = None, *, policy: Any = None, value: str | None = None,
                summary: dict[str, Any] | None = None) -> Callable[[str, dict[str, Any]], Any]:
    name = "shop/staging/api-token"
    base = {"ARN": ARN.format(name), "Name": name}

    def answer(operation: str, request: dict[str, Any]) -> Any:
        if operation == "ListSecrets":
            return {"SecretList": [summary if summary is not None else dict(base)]}
        if operation == "DescribeSecret":
            return {**base, "VersionIdsToStages": {"v1": ["AWSCURRENT"]}, **(secret or {})}
        if operation == "GetResourcePolicy":
            return {**base, **({"ResourcePolicy": policy} if policy is not None else {})}
        if operation == "GetSecretValue":
            return {**base, "VersionId": "v1", "SecretString": value or "x"}
        return {}
    return answer


MALFORMED_AWS: dict[str, tuple[Callable[[Planted], dict[str, Any]], str]] = {
    "name-newline": (lambda p: {"summary": {"ARN": ARN.format("x"), "Name": f"shop/staging/a\nsecrets:\n  {p.new()}: {{}}"}}, "ListSecrets entry 1"),
    "name-missing": (lambda p: {"summary": {"ARN": ARN.format("x")}}, "ListSecrets entry 1"),
    "name-number": (lambda p: {"summary": {"ARN": ARN.format("x"), "Name": 5}}, "ListSecrets entry 1"),
    "name-too-long": (lambda p: {"summary": {"ARN": ARN.format("x"), "Name": "shop/staging/" + "a" * 600}}, "ListSecrets entry 1"),
    "arn-newline": (lambda p: {"summary": {"ARN": f"arn:aws:x\n{p.new()}", "Name": "shop/staging/a"}}, "ListSecrets entry 1"),
    "described-other-name": (lambda p: {"secret": {"Name": f"shop/staging/{p.new()}"}}, "field 'Name'"),
    "rotation-function-newline": (lambda p: {"secret": {"RotationEnabled": True, "RotationLambdaARN": f"arn:aws:lambda\n# {p.new()}"}}, "field 'RotationLambdaARN'"),
    "schedule-newline": (lambda p: {"secret": {"RotationEnabled": True, "RotationRules": {"ScheduleExpression": f"rate(4 hours)\nsecrets: {p.new()}"}}}, "field 'RotationRules.ScheduleExpression'"),
    "days-text": (lambda p: {"secret": {"RotationEnabled": True, "RotationRules": {"AutomaticallyAfterDays": 5, "ScheduleExpression": None}}}, ""),
    "tags-map": (lambda p: {"secret": {"Tags": {"team": p.new()}}}, "secret 'shop/staging/api-token'"),
    "tags-number": (lambda p: {"secret": {"Tags": [{"Key": "team", "Value": 5}]}}, "field 'Tags'"),
    "replicas-text": (lambda p: {"secret": {"ReplicationStatus": [{"Status": p.new()}]}}, "field 'ReplicationStatus'"),
    "stages-list": (lambda p: {"secret": {"VersionIdsToStages": ["AWSCURRENT"]}}, "secret 'shop/staging/api-token'"),
    "policy-not-json": (lambda p: {"policy": f"not json {p.new()}"}, "field 'ResourcePolicy'"),
    "policy-list": (lambda p: {"policy": json.dumps([p.new()])}, "field 'ResourcePolicy'"),
    "policy-huge": (lambda p: {"policy": json.dumps({"Version": "2012-10-17", "Sid": "x" * 21000})}, "field 'ResourcePolicy'"),
}


@pytest.mark.parametrize("case", MALFORMED_AWS, ids=list(MALFORMED_AWS))
def test_draft_checks_what_the_endpoint_says(case: str, tmp_path: Path, moto: Moto) -> None:
    planted = Planted([])
    make, where = MALFORMED_AWS[case]
    with answering_server(_aws_answer(**make(planted))) as (url, _):
        result, _ = run(_command("draft", tmp_path, url, tmp_path))
    produced = result.text + (written(tmp_path / "out") if (tmp_path / "out").exists() else "")
    assert sum(1 for c in planted.canaries if c in produced) == 0
    if where:
        one_line(result, where)
        assert not (tmp_path / "out").exists()
    else:
        assert result.code == 0, result.text


@pytest.mark.parametrize("keys", ["token-key", "newline-key", "long-key"])
def test_json_key_names_that_are_not_names_are_counted_not_shown(keys: str, tmp_path: Path, moto: Moto) -> None:
    planted = Planted([])
    odd = {"token-key": planted.new(), "newline-key": f"a\n{planted.new()}", "long-key": "k" + planted.new() * 3}[keys]
    value = json.dumps({"host": planted.new(), odd: planted.new(), "password": planted.new()})
    with answering_server(_aws_answer({}, value=value)) as (url, _):
        result, _ = run([*_command("draft", tmp_path, url, tmp_path), "--read-keys"])
    assert result.code == 0, result.text
    produced = result.text + written(tmp_path / "out")
    assert sum(1 for c in planted.canaries if c in produced) == 0
    assert "1 JSON key(s) of the value are not catalog key names" in produced
    assert "host:" in produced and "password:" in produced


def test_the_resource_policy_is_recorded_as_aws_returned_it(tmp_path: Path, moto: Moto) -> None:
    """GetResourcePolicy's text, unchanged, in the adopt entry (moto keeps it as PutResourcePolicy got it)."""
    import yaml

    sm = moto.client("secretsmanager", "eu-west-1")
    with_policy = sm.create_secret(Name="shop/staging/with-policy", SecretString=moto.value())
    without = sm.create_secret(Name="shop/staging/without-policy", SecretString=moto.value())
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:DeleteSecret", "Resource": "*"}]},
        indent=1)
    sm.put_resource_policy(SecretId=with_policy["ARN"], ResourcePolicy=policy)
    try:
        result, _ = run(["draft", "--stack", "staging", "--from-aws", "shop/staging/", "--region", "eu-west-1",
                         "--out", str(tmp_path / "out")])
        assert result.code == 0, result.text
        config = yaml.safe_load((tmp_path / "out" / "Pulumi.staging.yaml").read_text())["config"]
        adopt = config["secrets-platform:adopt"]
        assert adopt["with-policy"]["resourcePolicy"] == sm.get_resource_policy(
            SecretId=with_policy["ARN"])["ResourcePolicy"]
        assert json.loads(adopt["with-policy"]["resourcePolicy"]) == json.loads(policy)
        assert "resourcePolicy" not in adopt["without-policy"]
    finally:
        for made in (with_policy, without):
            sm.delete_secret(SecretId=made["ARN"], ForceDeleteWithoutRecovery=True)


# --- 2. linear in the number of variables ------------------------------------------------------------------

def test_twenty_thousand_variables_sharing_a_word_end_well_within_the_cap(tmp_path: Path) -> None:
    """20,000 APP_* lines ran past 90 s (a set and a sorted list of the group per variable); the draft's own
    work is now linear. Measured, not timed against a target: the command must end under the 90 s cap."""
    from ops import draft
    from ops.inputs import Skipped

    sizes, seconds = (5_000, 20_000), []
    for size in sizes:
        env = tmp_path / f"{size}.env"
        env.write_text("".join(f"APP_VAR{i}=\n" for i in range(size)))
        started = time.process_time()
        variables = draft.read_dotenv(env, Skipped())
        request = draft.Request(stack="staging", environment="staging", app="shop", owner=None, region=None,
                                account_id=None, catalog_path="catalog.yaml", out_dir=tmp_path / "out",
                                env_files=[env], compose_files=[], prefix=None, read_keys=False, force=False)
        app, drafts = draft.build(request, variables, {}, [])
        draft.render_catalog(request, app, drafts, [str(env)])
        seconds.append(time.process_time() - started)
        assert len(drafts["app"].keys) == size
    # Four times the variables: about four times the work (quadratic would be sixteen).
    assert seconds[1] / seconds[0] < 8, seconds


def _iter_cases() -> Iterator[str]:
    yield from DOTENV_FORMS
    yield from COMPOSE_FORMS


def test_the_corpus_is_large() -> None:
    parametrized = (len(DOTENV_FORMS) + len(COMPOSE_FORMS) + len(COMPOSE_TYPES) + 3 * len(NOT_FILES) + 13 + 10 + 6 + 2 + 3 + 3 + 3 + 2
                    + 2 * len(MALFORMED_DUE) + len(MALFORMED_AWS) + 3 + 3 + 5)
    assert parametrized >= 120, parametrized
    assert len(set(_iter_cases())) == len(DOTENV_FORMS) + len(COMPOSE_FORMS)
