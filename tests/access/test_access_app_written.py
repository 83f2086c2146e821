"""A value the application renews and writes back (seed 002's Xero refresh token, `rotation: application`).

The tria-aibpo example's production stack, with a role per service: the worker may put a new
version of exactly `xero-refresh-token` and nothing else; every other principal still cannot write
it; the read policies' explicit deny of writes leaves that one action open, or it would cancel the
grant. Decided by our evaluator and by the independent simulator, cell by cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from access_harness import REPO, Simulator

from preview.access_matrix import AccessModel, collect, evaluate, kms_request, secret_request

EXAMPLE = REPO / "examples" / "tria-aibpo"
ACCOUNT = "123456789012"
REGION = "ap-southeast-1"
RENEWED = "tria-aibpo/production/xero-refresh-token"
WRITE_ACTIONS = ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
                 "secretsmanager:DeleteSecret", "secretsmanager:UpdateSecret")


def role(what: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/tria-aibpo-production-{what}"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> AccessModel:
    from tests.conftest import run_stack

    values = dict(yaml.safe_load((EXAMPLE / "Pulumi.production.yaml").read_text())["config"])
    values["secrets-platform:principals"] = {
        "runtime": [role("app")], "ci": [role("deploy")],
        "services": {s: [role(s)] for s in ("api", "worker", "backup")},
    }
    config = Path(tmp_path_factory.mktemp("tria")) / "Pulumi.production.yaml"
    config.write_text(yaml.safe_dump({"config": values}, sort_keys=False))
    resources = run_stack("production", config_file=config).run.resources
    return collect(resources, account_id=ACCOUNT, region=REGION)


def _both(simulator: Simulator, requests: list) -> list[str]:  # type: ignore[type-arg]
    ours = [evaluate(r) for r in requests]
    theirs = simulator.decide(requests)
    assert ours == theirs, [(r.principal, r.action, r.resource) for r, a, b in zip(requests, ours, theirs, strict=True)
                            if a != b]
    return ours


def test_the_worker_writes_back_exactly_its_renewed_value(model: AccessModel, simulator: Simulator) -> None:
    worker = model.principal(role("worker"))
    primary = [s for s in model.secrets if s.region == REGION]
    requests = [secret_request(worker, s, action) for s in primary for action in WRITE_ACTIONS]
    decisions = dict(zip([(r.resource.split(":secret:")[1][:-7], r.action) for r in requests],
                         _both(simulator, requests), strict=True))
    allowed = sorted(k for k, v in decisions.items() if v == "Allowed")
    assert allowed == [(RENEWED, "secretsmanager:PutSecretValue")]
    # Everything else it may not do to that secret is denied explicitly, not merely not granted.
    assert {v for (name, action), v in decisions.items() if name == RENEWED and action != WRITE_ACTIONS[0]} == {
        "ExplicitlyDenied"}
    # It still reads it (the OAuth flow reads the token it then renews).
    renewed = next(s for s in primary if s.name == RENEWED)
    assert _both(simulator, [secret_request(worker, renewed, "read")]) == ["Allowed"]


def test_no_other_principal_may_write_the_renewed_value(model: AccessModel, simulator: Simulator) -> None:
    renewed = next(s for s in model.secrets if s.name == RENEWED and s.region == REGION)
    others = [p for p in model.principals if p.arn != role("worker") and p.arn != role("deploy")
              and "-rotate-" not in p.arn]
    assert {p.arn for p in others} >= {role("app"), role("api"), role("backup")}
    decisions = _both(simulator, [secret_request(p, renewed, "write") for p in others])
    assert "Allowed" not in decisions


def test_the_worker_stores_through_secrets_manager_only(model: AccessModel, simulator: Simulator) -> None:
    worker = model.principal(role("worker"))
    key = next(k for k in model.keys if k.region == REGION)
    cases = [(f"secretsmanager.{REGION}.amazonaws.com", "Allowed"), (None, "ImplicitlyDenied")]
    requests = [kms_request(worker, key, "kms:GenerateDataKey", via_service=via) for via, _ in cases]
    assert _both(simulator, requests) == [want for _, want in cases]
    # Another service reads through the key but cannot store with it.
    api = model.principal(role("api"))
    via = f"secretsmanager.{REGION}.amazonaws.com"
    assert _both(simulator, [kms_request(api, key, "kms:GenerateDataKey", via_service=via)]) == ["ImplicitlyDenied"]


def test_the_new_documents_pass_parliament(model: AccessModel) -> None:
    from test_access_lint import _findings, _unaccepted

    worker = model.principal(role("worker"))
    documents = [("identity", p.name, p.document) for p in worker.policies]
    assert any(p.name.endswith("-secrets-write") for p in worker.policies)
    documents += [("key", k.arn, k.policy) for k in model.keys]
    problems = [f"{label}: {f.issue} {f.detail}" for kind, label, doc in documents for f in _findings(doc)
                if _unaccepted(kind, f)]
    assert not problems, problems
