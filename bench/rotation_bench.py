"""Rotation, per strategy: wall time of a full four-step rotation and the AWS API calls it makes.

Secrets Manager and Lambda are moto's server; RotateSecret invokes the four steps, which moto's
Lambda (docker mode off) hands to `rotation.handler.handle` in-process (tests/servers.py). The
function gets a boto3 client of its own, whose calls a botocore `before-call` hook counts by
step and operation. PostgreSQL and Redis are real servers on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
STRATEGIES = ("token", "postgres-single-user", "postgres-alternating-users", "redis-acl", "jwt-hs256", "jwt-rs256")

# The fewest Secrets Manager calls each step needs on the happy path, and why (README's table).
#  - createSecret and finishSecret, which start and end a rotation, first confirm with DescribeSecret
#    that rotation is enabled and which versions hold which label (the only call that returns both).
#    setSecret and testSecret read the token's AWSPENDING value, whose response carries the secret's
#    name and the version's stages: no DescribeSecret. A step with nothing to do (token and JWT
#    setSecret) needs no call at all; a token's testSecret reads the pending value to check it
#    (not empty; in a JSON secret, its key present) before it can become AWSCURRENT.
#  - createSecret: DescribeSecret; GetSecretValue(AWSCURRENT) only when the new value derives from
#    the current one (connection fields, the JWT previous key; not a single-value token);
#    PutSecretValue. No read of the token's AWSPENDING value first: PutSecretValue refuses a second,
#    different value under a token that has one (AWS's PutSecretValue reference, ClientRequestToken),
#    and a retried step answers that refusal by reusing the stored value (+1 call on a retry only).
#  - setSecret: GetSecretValue(AWSPENDING); AWSCURRENT (the credential that changes the password, or
#    the role in use); the master secret (alternating users, Redis). AWSPREVIOUS only when AWSCURRENT
#    cannot log in (single user without a master).
#  - testSecret: GetSecretValue(AWSPENDING).
#  - finishSecret: DescribeSecret (which version holds AWSCURRENT); GetSecretValue(AWSPENDING, token):
#    RotateSecret opens the token's version before createSecret stores a value, and DescribeSecret
#    lists it either way, so only this read proves there is a value to move AWSCURRENT onto;
#    UpdateSecretVersionStage to move AWSCURRENT; UpdateSecretVersionStage to remove AWSPENDING (this
#    protocol does it and moto refuses the next rotation without it; AWS's own templates leave it
#    out). Redis retires the older passwords with that AWSPENDING value, the master secret (+1) and
#    AWSPREVIOUS, whose password it keeps for one more rotation period (+1).
MINIMUM: dict[str, dict[str, int]] = {
    "token": {"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
    "jwt-hs256": {"createSecret": 3, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
    "jwt-rs256": {"createSecret": 3, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
    "postgres-single-user": {"createSecret": 3, "setSecret": 2, "testSecret": 1, "finishSecret": 4},
    "postgres-alternating-users": {"createSecret": 3, "setSecret": 3, "testSecret": 1, "finishSecret": 4},
    "redis-acl": {"createSecret": 3, "setSecret": 3, "testSecret": 1, "finishSecret": 6},
}
FIRST_VALUE_MINIMUM: dict[str, dict[str, int]] = {
    "token": {"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
    "jwt-hs256": {"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
    "jwt-rs256": {"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 4},
}
"""The first rotation of a secret created empty (`first_value: rotation`): createSecret has no
AWSCURRENT to read, so a JWT's is one call less; the rest as above."""


def _import_servers() -> Any:
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import servers

    return servers


@dataclass
class CallCounter:
    """Secrets Manager calls of the rotation function's client, by step and operation."""

    step: str = "-"
    calls: dict[str, Counter[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        with self.lock:
            self.calls.setdefault(self.step, Counter())[operation] += 1

    def reset(self) -> None:
        with self.lock:
            self.calls = {}


@dataclass
class Rig:
    """moto (Secrets Manager + Lambda), invokes routed to the handler with a counted client."""

    sm: Any
    lam: Any
    role_arn: str
    counter: CallCounter
    errors: list[BaseException]
    step_s: dict[str, float]

    def function(self, strategy: str, targets: Mapping[str, Any]) -> str:
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("rotation/__init__.py", "")
        return str(self.lam.create_function(
            FunctionName=f"rotate-{uuid.uuid4().hex[:12]}", Runtime="python3.12", Role=self.role_arn,
            Handler="rotation.handler.lambda_handler", Code={"ZipFile": buffer.getvalue()},
            Environment={"Variables": {"ROTATION_STRATEGY": strategy, "ROTATION_TARGETS": json.dumps(targets)}},
        )["FunctionArn"])

    def secret(self, name: str, value: Mapping[str, Any] | str) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        return str(self.sm.create_secret(Name=name, SecretString=text)["ARN"])


@contextlib.contextmanager
def rig() -> Iterator[Rig]:
    import boto3  # noqa: F401 - fail early if missing

    servers = _import_servers()
    from rotation import handler

    with servers.moto_server() as moto, servers.moto_rotates_empty_secrets(), servers.moto_keeps_version_values():
        function_client = moto.client("secretsmanager")
        counter = CallCounter()
        function_client.meta.events.register("before-call.*.*", counter.hook)
        errors: list[BaseException] = []
        step_s: dict[str, float] = {}

        def run(event: dict[str, Any], environ: Mapping[str, str]) -> None:
            counter.step = str(event.get("Step"))
            t0 = time.perf_counter()
            try:
                handler.handle(event, environ, function_client)
            except BaseException as exc:
                errors.append(exc)
                raise
            finally:
                step_s[counter.step] = step_s.get(counter.step, 0.0) + time.perf_counter() - t0
                counter.step = "-"

        with servers.lambda_invokes_routed(run):
            iam = moto.client("iam")
            role = iam.create_role(RoleName="rotation-lambda", AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "lambda.amazonaws.com"}}]}))
            yield Rig(moto.client("secretsmanager"), moto.client("lambda"), role["Role"]["Arn"], counter, errors,
                      step_s)


def _rsa_pems(bits: int = 2048) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _new_password() -> str:
    import secrets

    return secrets.token_urlsafe(24)


Setup = Callable[[Rig, str], str]
"""Creates the secret `name` (and what it needs) and returns the rotation function's ARN."""


def _setups(stack: contextlib.ExitStack) -> dict[str, Setup | str]:
    """Per strategy: a setup, or why it cannot run here (a server binary missing)."""
    servers = _import_servers()
    from rotation.strategies.jwt import b64url, jwk
    from rotation.strategies.postgres import build_url as pg_url
    from rotation.strategies.redis_acl import build_url as redis_url

    result: dict[str, Setup | str] = {}

    def token(r: Rig, name: str) -> str:
        r.secret(name, _new_password() * 2)
        return r.function("token", {name: {"key": None, "generate": {"kind": "bytes", "bytes": 32,
                                                                       "encoding": "hex"}}})

    def hs256(r: Rig, name: str) -> str:
        import secrets

        r.secret(name, {"alg": "HS256", "kid": "k0", "key": b64url(secrets.token_bytes(32))})
        return r.function("jwt-hs256", {name: {}})

    def rs256(r: Rig, name: str) -> str:
        private, public = _rsa_pems()
        r.secret(name, {"alg": "RS256", "kid": "r0", "private_key_pem": private, "public_key_pem": public,
                        "jwks": {"keys": [jwk(public, "r0")]}})
        return r.function("jwt-rs256", {name: {}})  # default: a 4096-bit key per rotation

    result.update({"token": token, "jwt-hs256": hs256, "jwt-rs256": rs256})

    try:
        pg = stack.enter_context(servers.postgres_server())
    except BaseException as exc:  # pytest.skip raises an OutcomeException (a BaseException)
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["postgres-single-user"] = result["postgres-alternating-users"] = f"PostgreSQL not available: {exc}"
    else:
        def pg_secret(user: str, password: str, **extra: Any) -> dict[str, Any]:
            data = {"engine": "postgres", "host": pg.host, "port": pg.port, "dbname": "postgres",
                    "username": user, "password": password, **extra}
            return {**data, "url": pg_url(data)}

        def single(r: Rig, name: str) -> str:
            user, password = f"app_{uuid.uuid4().hex[:8]}", _new_password()
            pg.create_role(user, password)
            r.secret(name, pg_secret(user, password))
            return r.function("postgres-single-user", {name: {}})

        def alternating(r: Rig, name: str) -> str:
            user, password = f"app_{uuid.uuid4().hex[:8]}", _new_password()
            pg.create_role(user, password)
            master = r.secret(name + "-master", {"username": pg.superuser, "password": pg.password})
            r.secret(name, pg_secret(user, password, masterarn=master))
            return r.function("postgres-alternating-users", {name: {}})

        result.update({"postgres-single-user": single, "postgres-alternating-users": alternating})

    try:
        redis_srv = stack.enter_context(servers.redis_server({}))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["redis-acl"] = f"Redis not available: {exc}"
    else:
        def redis_acl(r: Rig, name: str) -> str:
            user, password = f"app-{uuid.uuid4().hex[:8]}", _new_password()
            admin = redis_srv.admin()
            try:
                admin.execute_command("ACL", "SETUSER", user, "on", "#" + hashlib.sha256(password.encode()).hexdigest(),
                                      "~app:*", "+@all")
            finally:
                admin.close()
            master = r.secret(name + "-master", {"username": redis_srv.admin_user,
                                                 "password": redis_srv.passwords[redis_srv.admin_user]})
            data = {"host": redis_srv.host, "port": redis_srv.port, "username": user, "password": password,
                    "tls": False, "masterarn": master}
            r.secret(name, {**data, "url": redis_url(data)})
            return r.function("redis-acl", {name: {}})

        result["redis-acl"] = redis_acl
    return result


def _measure(r: Rig, name: str, function: str) -> dict[str, Any]:
    """One RotateSecret of `name`: its wall time and the function's calls by step."""
    r.counter.reset()
    r.errors.clear()
    r.step_s.clear()
    t = time.perf_counter()
    r.sm.rotate_secret(SecretId=name, ClientRequestToken=str(uuid.uuid4()),
                       RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 30})
    wall = time.perf_counter() - t
    by_step = {step: dict(sorted(r.counter.calls.get(step, Counter()).items())) for step in STEPS}
    return {
        "wall_s": round(wall, 4),
        "step_s": {s: round(v, 4) for s, v in r.step_s.items()},
        "calls": sum(sum(c.values()) for c in by_step.values()),
        "calls_by_step": by_step,
        "error": repr(r.errors[0]) if r.errors else None,
    }


def _summary(runs: list[dict[str, Any]], minimum: dict[str, int]) -> dict[str, Any]:
    return {
        "rotations": len(runs),
        "wall_s_median": round(statistics.median(x["wall_s"] for x in runs), 4),
        "calls": runs[-1]["calls"],
        "calls_first": runs[0]["calls"],
        "minimum_calls": sum(minimum.values()),
        "minimum_by_step": minimum,
        "calls_by_step": {s: sum(runs[-1]["calls_by_step"][s].values()) for s in STEPS},
        "failed": sum(1 for x in runs if x["error"]),
        "runs": runs,
    }


COLD_START = """
import sys
sys.path[:0] = {paths!r}
import time
t0 = time.perf_counter()
from rotation import handler, strategies
cls = strategies.load({strategy!r})
t1 = time.perf_counter()
import boto3
client = boto3.client("secretsmanager", region_name="eu-west-1")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""
LAMBDA_RUNTIME = ("boto3",)
"""What the Lambda runtime (python3.12) provides beside the package: boto3 and its dependencies."""
LAMBDA_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.0"}
"""scripts/build-lambda.sh installs the wheels for python3.12: markers are evaluated for it."""


def _closure(requirements: list[str]) -> set[str]:
    """The distributions (installed here) that `requirements` need, extras and markers evaluated as for
    the Lambda runtime."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**LAMBDA_PYTHON, "extra": extra}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in found:
            continue
        found.add(name)
        for sub in metadata.distribution(name).requires or []:
            parsed = Requirement(sub)
            todo += [(parsed, e) for e in (req.extras or {""})] + [(parsed, "")]
    return found


def lambda_site(target: Path) -> Path:
    """A directory holding exactly the libraries the rotation Lambda has: the closure of
    rotation/requirements.txt (what scripts/build-lambda.sh packages) and of boto3 (the runtime's), as
    links to this environment's installed copies. The development environment holds more (pulumi brings
    opentelemetry, which redis-py imports when it is installed): a cold start measured there is not the
    Lambda's."""
    from importlib import metadata

    lines = (REPO / "rotation" / "requirements.txt").read_text().splitlines()
    wanted = [ln.split("#", 1)[0].strip() for ln in lines]
    for name in sorted(_closure([w for w in wanted if w] + list(LAMBDA_RUNTIME))):
        dist = metadata.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if len(f.parts) > 0 and f.parts[0] != ".."}
        for top in sorted(tops):
            source = Path(str(dist.locate_file(top)))
            if top.endswith((".dist-info", ".pth")) or top == "bin" or not source.exists():
                continue
            link = target / top
            if not link.exists():
                link.symlink_to(source)
    return target


def _cold_runs(strategy: str, paths: list[str], runs: int, pycache: Path, *, compiled: bool,
               site_packages: bool = False) -> tuple[list[float], list[float]]:
    """`runs` fresh interpreters importing the handler and `strategy`. Bytecode is read from (and, when
    `compiled`, first written to) the cache `pycache` only, whatever the environment sets: `compiled` is a
    package shipped with .pyc files for every module, otherwise every module is compiled from source."""
    import os

    flags = ["-X", f"pycache_prefix={pycache}"] + ([] if site_packages else ["-S"])
    code = COLD_START.format(strategy=strategy, paths=paths)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if compiled:  # one run that compiles and caches what the import touches
        subprocess.run([sys.executable, *flags, "-c", code], cwd=REPO, capture_output=True, check=True, timeout=120,
                       env=env)
    ready, client = [], []
    for _ in range(runs):
        done = subprocess.run([sys.executable, *flags, "-c", code], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=120, env={**env, "PYTHONDONTWRITEBYTECODE": "1"})
        a, b = (float(x) for x in done.stdout.split())
        ready.append(1000 * a)
        client.append(1000 * b)
    return ready, client


def cold_start(strategies: tuple[str, ...] = STRATEGIES, runs: int = 5) -> dict[str, Any]:
    """A Lambda cold start per strategy, in a fresh interpreter: from importing the handler to its
    strategy class loaded (`ready_ms`), and then the boto3 Secrets Manager client the first invocation
    builds (`client_ms`, the same for every strategy). The lowest of `runs` (the machine is shared).

    The interpreter sees only the Lambda's libraries (`lambda_site`; `-S`: no site-packages), every
    module read from compiled bytecode (a package shipped with .pyc files). Beside it:
    `ready_ms_no_pyc`, every module compiled from source, which is what a package built without .pyc
    files pays at each cold start (scripts/build-lambda.sh passes --no-compile, and /var/task is
    read-only, so the runtime cannot keep what it compiles); `ready_ms_dev_venv`, compiled, with this
    development environment's site-packages (more packages installed: pulumi brings opentelemetry,
    which redis-py imports when present)."""
    import tempfile

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lambda-cold-") as tmp:
        root = Path(tmp)
        (root / "site").mkdir()
        site = str(lambda_site(root / "site"))
        for strategy in strategies:
            ready, client = _cold_runs(strategy, [str(REPO), site], runs, root / "pyc", compiled=True)
            cold, _ = _cold_runs(strategy, [str(REPO), site], runs, root / f"empty-{strategy}", compiled=False)
            dev, _ = _cold_runs(strategy, [str(REPO)], runs, root / "pyc-dev", compiled=True, site_packages=True)
            out[strategy] = {"ready_ms": round(min(ready), 1), "client_ms": round(min(client), 1),
                             "runs_ready_ms": [round(x, 1) for x in ready],
                             "ready_ms_no_pyc": round(min(cold), 1), "ready_ms_dev_venv": round(min(dev), 1)}
    return out


def run(rotations: int = 3, strategies: tuple[str, ...] = STRATEGIES) -> dict[str, Any]:
    """`rotations` full rotations of one secret per strategy; calls and times of each."""
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        t0 = time.perf_counter()
        setups = _setups(stack)
        r = stack.enter_context(rig())
        servers_s = time.perf_counter() - t0
        for strategy in strategies:
            setup = setups[strategy]
            if isinstance(setup, str):
                out[strategy] = {"skipped": setup}
                continue
            name = f"benchapp/staging/{strategy}-{uuid.uuid4().hex[:6]}"
            function = setup(r, name)
            out[strategy] = _summary([_measure(r, name, function) for _ in range(rotations)], MINIMUM[strategy])
        for strategy in strategies:
            if strategy not in FIRST_VALUE_MINIMUM:
                continue
            runs = []
            for _ in range(rotations):
                name = f"benchapp/staging/first-{strategy}-{uuid.uuid4().hex[:6]}"
                r.sm.create_secret(Name=name)  # empty, as the program declares it
                runs.append(_measure(r, name, r.function(strategy, {name: {}} if strategy != "token" else {
                    name: {"key": None, "generate": {"kind": "bytes", "bytes": 32, "encoding": "hex"}}})))
            out[f"{strategy} (first value)"] = _summary(runs, FIRST_VALUE_MINIMUM[strategy])
        out["_servers_start_s"] = round(servers_s, 3)
    out["_cold_start"] = cold_start(strategies)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.rotation_bench`: the rotation figures alone, into bench/results/rotation.json."""
    import argparse
    import datetime
    import os
    import platform
    from importlib import metadata

    parser = argparse.ArgumentParser(prog="bench.rotation_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=3, help="full rotations per strategy (default 3)")
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per cold-start figure (default 9)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rotation.json")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip()
    doc: dict[str, Any] = {
        "name": "rotation",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "commit": commit, "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "versions": {d: metadata.version(d) for d in ("moto", "boto3", "psycopg", "psycopg-binary", "redis",
                                                      "cryptography")},
    }
    rotation = run(rotations=args.rotations)
    rotation["_cold_start"] = cold_start(runs=args.runs)
    doc["rotation"] = rotation
    doc["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for strategy, v in rotation.items():
        if isinstance(v, dict) and "calls" in v:
            print(f"{strategy:<32} {v['calls']:>3} calls (minimum {v['minimum_calls']}) {v['calls_by_step']}")
    for strategy, c in rotation["_cold_start"].items():
        print(f"{strategy:<32} ready {c['ready_ms']:>6.1f} ms (no .pyc {c['ready_ms_no_pyc']:>6.1f} ms, "
              f"dev venv {c['ready_ms_dev_venv']:>6.1f} ms) + client {c['client_ms']:>6.1f} ms")
    failed = [s for s, v in rotation.items() if isinstance(v, dict) and v.get("failed")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
