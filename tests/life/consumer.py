"""A consumer process of the simulated year (tests/life/year.py): it holds the values of some secrets, read from
Secrets Manager (moto) the way its kind reads them, and logs in with them to the real servers when told to.

    python -m tests.life.consumer --kind start|cold-start|cached|request [--ttl SECONDS] [--function NAME]
        --endpoint URL --region R ARN...

- `start`: reads every secret once, when the process starts (an ECS task: values injected at task start; the
  year restarts the process where the restart function would start a new deployment);
- `cold-start`: a Lambda function (`--function`, created in moto) that reads every secret once per execution
  environment. Each check is an invocation: when the function's `LastModified` differs from the one its
  environment started under, the configuration changed (the restart function's UpdateFunctionConfiguration,
  rotation/consumers.py), and Lambda runs the invocation in a new environment, which reads again (Lambda API
  reference, UpdateFunctionConfiguration: invocations after the update use the new configuration). Environments
  Lambda recycles on its own are not emulated: this one lives until a configuration change;
- `cached`: reads a secret again when its copy is `--ttl` seconds old (the AWS caching clients' default TTL is
  one hour);
- `request`: reads before every use.

It reads one JSON line per check from stdin, `{"now": <simulated seconds>}`, and answers one JSON line:
`{"<arn>": true|false}`, whether the login with the value it holds succeeded. A login refused by the server is
`false`; any other failure ends the process with a message (never a value). Token secrets have no server: their
verifier reads the current value per request (docs/consumers.md: a token is revoked at once), so a held token
is valid while it equals AWSCURRENT. Values are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

CURRENT = "AWSCURRENT"


def _client(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _configured(endpoint: str, region: str, function: str) -> Any:
    """A function returning the Lambda function's `LastModified` (what a new execution environment follows)."""
    import boto3

    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    return lambda: str(lam.get_function_configuration(FunctionName=function)["LastModified"])


def _read(sm: Any, arn: str) -> str:
    return str(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])


def login(sm: Any, arn: str, value: str) -> bool:
    """Whether the server the secret belongs to accepts the held value."""
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # a token: its verifier accepts the current value only
        return value == _read(sm, arn)
    if data.get("engine") == "postgres":
        import psycopg

        try:
            with psycopg.connect(host=data["host"], port=int(data["port"]), user=data["username"],
                                 password=data["password"], dbname=data.get("dbname", "postgres"),
                                 connect_timeout=5, sslmode="disable") as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                return False
            raise
        return True
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(host=data["host"], port=int(data["port"]), username=data["username"],
                       password=data["password"], socket_timeout=5, socket_connect_timeout=5,
                       retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.life.consumer")
    parser.add_argument("--kind", choices=("start", "cold-start", "cached", "request"), required=True)
    parser.add_argument("--ttl", type=float, default=3600.0)
    parser.add_argument("--function", default="", help="with --kind cold-start: the Lambda function it runs as")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("arns", nargs="+")
    args = parser.parse_args(argv)
    sm = _client(args.endpoint, args.region)
    held: dict[str, str] = {}
    read_at: dict[str, float] = {}
    if args.kind == "cold-start" and not args.function:
        parser.error("--kind cold-start needs --function")
    configured = _configured(args.endpoint, args.region, args.function) if args.kind == "cold-start" else None
    environment = configured() if configured is not None else ""
    if args.kind in ("start", "cold-start"):
        held = {arn: _read(sm, arn) for arn in args.arns}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        now = float(json.loads(line)["now"])
        if configured is not None and (changed := configured()) != environment:  # a new execution environment
            environment, held = changed, {arn: _read(sm, arn) for arn in args.arns}
        answer = {}
        for arn in args.arns:
            stale = arn not in held or (args.kind == "cached" and now - read_at[arn] >= args.ttl)
            if args.kind == "request" or (args.kind == "cached" and stale):
                held[arn], read_at[arn] = _read(sm, arn), now
            answer[arn] = login(sm, arn, held[arn])
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
