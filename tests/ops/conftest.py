"""Fixtures for the day-2 commands: moto's server on loopback holding the stack's catalog secrets.

Values put into moto are generated at run time with `secrets` and remembered; after every test the
captured output of every command is checked to contain none of them.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ops_harness import LOOPBACK, Moto, Result, Rotation

from ops.cli import main


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    request = urllib.request.Request(  # noqa: S310 - http on loopback
        f"{url}/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        response.read()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """Dummy credentials, AWS_ENDPOINT_URL at moto, no secrets of the project left from another test."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    state = Moto(moto_url)
    state.clear()
    yield state
    state.clear()
    leaked = any(value in output for output in state.outputs for value in state.planted)
    assert not leaked, "a secret value put into moto appears in a command's output"


@pytest.fixture
def ops(moto: Moto) -> Callable[..., Result]:
    """Run `python -m ops ...` in-process; every output is remembered for the leak check."""

    def run(*argv: str, stdin: io.StringIO | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out=out, err=err, stdin=stdin or io.StringIO(""))
        moto.outputs.extend([out.getvalue(), err.getvalue()])
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def rotation_function(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Rotation:
    """A Lambda in moto (docker mode off) whose invocations run a token rotation here, in-process."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.secretsmanager.models import SecretsManagerBackend

    iam = moto.client("iam")
    role_name = f"rotation-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    fn = moto.client("lambda").create_function(
        FunctionName=role_name, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="index.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    rotation = Rotation(fn["FunctionArn"])
    lock = threading.Lock()

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
        event = json.loads(body)
        step, secret_id, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        with lock:
            rotation.invocations.append((step, secret_id))
        sm = moto.client("secretsmanager")
        if step == "createSecret":
            sm.put_secret_value(SecretId=secret_id, ClientRequestToken=token, SecretString=moto.value(),
                                VersionStages=["AWSPENDING"])
        elif step == "finishSecret":
            described = sm.describe_secret(SecretId=secret_id)
            current = next(v for v, labels in described["VersionIdsToStages"].items() if "AWSCURRENT" in labels)
            if current != token:
                sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSCURRENT",
                                               MoveToVersionId=token, RemoveFromVersionId=current)
            # Secrets Manager drops AWSPENDING once the rotation is done; moto leaves it on.
            sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=token)
        return b"null"

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    # moto forgets the configured function when RotateSecret is called without RotationLambdaARN
    # (Secrets Manager keeps it, and `ops rotate` relies on that): keep it, as AWS does.
    original = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: Any, secret_id: str, client_request_token: str | None = None,
                      rotation_lambda_arn: str | None = None, *args: Any, **kwargs: Any) -> str:
        if not rotation_lambda_arn and secret_id in self.secrets:
            rotation_lambda_arn = self.secrets[secret_id].rotation_lambda_arn or None
        return original(self, secret_id, client_request_token, rotation_lambda_arn, *args, **kwargs)

    monkeypatch.setattr(SecretsManagerBackend, "rotate_secret", rotate_secret)
    return rotation
