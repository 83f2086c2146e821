"""`python -m ops put --stack <s> <secret> [<key>]`: write a value that never passes through Pulumi.

For a catalog value declared `external: {put: ops}`, the program creates the secret empty and never writes it;
this command does. The value is read from a hidden prompt on a terminal, or from stdin (one line; a trailing
newline is dropped), never from the command line, where shells and process lists keep it. It applies the
checks the program applies to a supplied value (placeholders, development values, `min_length`, `pattern`,
`differs_from`: the other secrets' values are read from AWS and compared through keyed digests, never
printed), then writes the whole JSON document with PutSecretValue, keeping the keys it does not change. It
never prints the value; production asks for confirmation (`--yes`).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any, TextIO

from components.catalog import Secret, Value
from components.values import _mismatch, _too_short, placeholder_problem
from ops.aws import NOT_FOUND, call, error_code
from ops.stack import OpsError, Stack

MAX_VALUE_BYTES = 65_536
"""PutSecretValue's SecretString holds at most 65,536 bytes (botocore's model)."""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("put", parents=parents,
                                 help="write a value declared `external: {put: ops}` (read from a prompt or stdin)")
    parser.add_argument("secret", help="catalog name (smtp) or full name (filot/staging/smtp)")
    parser.add_argument("key", nargs="?", default=None, help="the JSON key, for a secret of several keys")
    parser.add_argument("--yes", action="store_true", help="confirm a production write without asking")


def _target(stack: Stack, given: str, key: str | None) -> tuple[str, Secret, str, Value]:
    name, entry = stack.resolve(given)
    if not entry.put_by_ops:
        raise OpsError(f"{stack.full_name(name)} is not put out of band: its values come from the program "
                       "(`external: {put: ops}` in the catalog makes a value one `ops put` writes)")
    if entry.grouped:
        if key is None:
            raise OpsError(f"{stack.full_name(name)} holds several keys ({', '.join(entry.values)}): name the one "
                           "to put")
        if key not in entry.values:
            raise OpsError(f"{stack.full_name(name)} has no key {key[:64]!r} (keys: {', '.join(entry.values)})")
        return name, entry, key, entry.values[key]
    if key is not None:
        raise OpsError(f"{stack.full_name(name)} is a single value: give no key")
    return name, entry, "", entry.values[""]


def read_value(stdin: TextIO, err: TextIO, prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The value from a hidden prompt (a terminal) or from stdin (a pipe): never echoed, never an argument."""
    try:
        interactive = stdin.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive:
        value = prompt("Value (not shown): ")
    else:
        value = stdin.read(MAX_VALUE_BYTES + 2)
        if len(value.encode()) > MAX_VALUE_BYTES + 1:
            raise OpsError(f"the value is over {MAX_VALUE_BYTES:,} bytes, Secrets Manager's limit")
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise OpsError("no value given (type it at the prompt, or pipe it on stdin)")
    if "\n" in value or "\x00" in value:
        raise OpsError("the value holds a line break or a NUL: give one line")
    return value


def _differs(stack: Stack, client: Any, name: str, entry: Secret, key: str, value: Value, supplied: str) -> None:
    """`differs_from`: compare keyed digests of this value and of each named value as AWS holds it."""
    run_key = secrets.token_bytes(32)
    mine = hmac.new(run_key, supplied.encode(), hashlib.sha256).digest()
    for ref in value.differs_from:
        other, _, other_key = ref.partition(".")
        if other not in stack.secrets:
            continue
        full = stack.full_name(other)
        try:
            answer = client.get_secret_value(SecretId=full, VersionStage="AWSCURRENT")
        except Exception as exc:  # noqa: BLE001 - botocore's errors: a missing secret has nothing to equal
            if error_code(exc) == NOT_FOUND:
                continue
            raise OpsError(f"read {full} to compare (differs_from): {error_code(exc) or type(exc).__name__}") from None
        text = answer.get("SecretString")
        if not isinstance(text, str):
            continue
        theirs: object = text
        if other_key:
            try:
                document = json.loads(text)
            except ValueError:
                continue
            theirs = document.get(other_key) if isinstance(document, dict) else None
        if not isinstance(theirs, str):
            continue
        if hmac.compare_digest(mine, hmac.new(run_key, theirs.encode(), hashlib.sha256).digest()):
            where = f"keys.{key}" if entry.grouped else "value"
            raise OpsError(f"{stack.full_name(name)}, field '{where}.differs_from': the value equals {ref}'s, which "
                           "the catalog says it must differ from; nothing was written")


def put(stack: Stack, client: Any, given: str, key: str | None, stdin: TextIO, out: TextIO, err: TextIO, *,
        yes: bool, confirm: Callable[[str], str | None],
        prompt: Callable[[str], str] = getpass.getpass) -> None:
    name, entry, key, value = _target(stack, given, key)
    full = stack.full_name(name)
    where = f"{full}, field '{'keys.' + key if entry.grouped else 'value'}'"
    supplied = read_value(stdin, err, prompt)
    problem = placeholder_problem(supplied, entry.class_) or _too_short(supplied, value.min_length) \
        or _mismatch(supplied, value, stack.environment)
    if problem:
        raise OpsError(f"{where}: {problem}; nothing was written")
    _differs(stack, client, name, entry, key, value, supplied)
    if stack.is_production and not yes:
        answer = confirm(f"Write a new value of {full}{' key ' + key if key else ''} (stack {stack.name})? "
                         "Type the stack name to confirm: ")
        if answer is None:
            raise OpsError("a production write needs --yes (no terminal to confirm on)")
        if answer.strip() != stack.name:
            raise OpsError("not confirmed: nothing was written")
    document: dict[str, Any] = {}
    if entry.grouped:
        try:
            current = client.get_secret_value(SecretId=full, VersionStage="AWSCURRENT").get("SecretString")
        except Exception as exc:  # noqa: BLE001 - botocore's errors
            if error_code(exc) != NOT_FOUND:
                raise OpsError(f"read {full}: {error_code(exc) or type(exc).__name__}") from None
            current = None  # the secret exists empty: its first value
        if isinstance(current, str):
            try:
                loaded = json.loads(current)
            except ValueError:
                raise OpsError(f"{full}: its current value is not a JSON object; nothing was written") from None
            if not isinstance(loaded, dict):
                raise OpsError(f"{full}: its current value is not a JSON object; nothing was written")
            document = loaded
        document[key] = supplied
        text = json.dumps(document, separators=(",", ":"))
    else:
        text = supplied
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise OpsError(f"{full}: the secret would hold over {MAX_VALUE_BYTES:,} bytes; nothing was written")
    answer = call(f"put {full}", client.put_secret_value, SecretId=full, SecretString=text)
    kept = sorted(k for k in document if k != key)
    out.write(f"put {full}{' key ' + key if key else ''}: version {answer.get('VersionId')} is AWSCURRENT"
              + (f"; kept {', '.join(kept)}" if kept else "") + "\n")
