"""The consumer restart function against a moto server on 127.0.0.1, fed by the program's own EventBridge
pattern through moto's EventBridge and SQS: a burst of rotations restarts each ECS service and each Lambda
consumer once; retries and later events of the burst do nothing; a rotation after the restart restarts
again; a failure is reported for retry; failures, other environments and API calls never restart."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from components import consumers
from preview.cli import Report, preview
from preview.model import plain
from rotation.consumers import ROTATED_AT, Restarter, handle
from tests.conftest import REPO, current_build
from tests.servers import MotoServer, moto_server
from tests.test_consumption import CATALOG, GOOD, REGION, stack
from tests.test_rotation_alerts import cloudtrail_event

UTC = dt.UTC
MOTO_ACCOUNT = "123456789012"  # moto's default account: the ARNs the events carry are the stack's own


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    project = tmp_path_factory.mktemp("restarts")
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "catalog.yaml").write_text(CATALOG)
    (project / "Pulumi.staging.yaml").write_text(stack(GOOD))
    current_build(project)
    return preview("staging", project, policies=False)


def declared(report: Report, token: str) -> dict[str, Any]:
    (found,) = [r for r in report.run.resources if r.type == token and "restart-consumers" in r.name]
    return plain(found.inputs)


@dataclass
class Recorded:
    deployments: list[str] = field(default_factory=list)
    """`cluster/service` of every forced deployment."""
    updates: list[str] = field(default_factory=list)
    """Every function whose configuration was updated."""


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoServer, Recorded]]:
    """moto on 127.0.0.1, with two of AWS's documented behaviours moto 5.2.5 does not have:

    - ECS UpdateService with forceNewDeployment starts a new deployment that becomes PRIMARY while the one
      it replaces turns ACTIVE (ECS API reference, UpdateService and Deployment.status: "PRIMARY: The most
      recent deployment of a service"); moto rewrites the id and createdAt of its one deployment instead.
    - UpdateFunctionConfiguration sets LastModified ("The date and time that the function was last updated",
      Lambda API reference, FunctionConfiguration); moto leaves it.
    Both record what they did, so that tests count restarts as AWS would see them.
    """
    from moto.awslambda.models import LambdaFunction
    from moto.ecs.models import EC2ContainerServiceBackend

    recorded = Recorded()
    original_update = EC2ContainerServiceBackend.update_service
    original_configure = LambdaFunction.update_configuration

    def update_service(self: Any, properties: dict[str, Any]) -> Any:
        force = properties.get("force_new_deployment", False)
        cluster, name = properties.get("cluster", "default"), properties["service"].split("/")[-1]
        service = self._get_service(cluster, name)
        before = [dict(d) for d in service.deployments]
        properties["force_new_deployment"] = False
        result = original_update(self, properties)
        if force:
            now = dt.datetime.now(UTC)
            for old in before:
                old["status"] = "ACTIVE"
            service.deployments = [{**before[0], "id": f"ecs-svc/{uuid.uuid4().int % 10**18}", "status": "PRIMARY",
                                    "createdAt": now, "updatedAt": now}, *before]
            recorded.deployments.append(f"{cluster.split('/')[-1]}/{name}")
        return result

    def update_configuration(self: Any, updates: dict[str, Any]) -> Any:
        self.last_modified = dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        recorded.updates.append(self.function_name)
        return original_configure(self, updates)

    monkeypatch.setattr(EC2ContainerServiceBackend, "update_service", update_service)
    monkeypatch.setattr(LambdaFunction, "update_configuration", update_configuration)
    with moto_server() as server:
        # moto's backends are global to the process: start from none.
        urllib.request.urlopen(urllib.request.Request(  # noqa: S310 (http on loopback)
            f"{server.endpoint_url}/moto-api/reset", method="POST"), timeout=10).read()
        yield server, recorded


def consumers_in(server: MotoServer, started: dt.datetime) -> None:
    """The api ECS service (cluster shop) and the shop-hook function, both started at `started`."""
    from moto.awslambda_simple.models import lambda_simple_backends  # Lambda's docker mode is off
    from moto.ecs.models import ecs_backends

    ecs = server.client("ecs")
    ecs.create_cluster(clusterName="shop")
    ecs.register_task_definition(family="api", containerDefinitions=[
        {"name": "api", "image": "example/api:1", "memory": 256}])
    ecs.create_service(cluster="shop", serviceName="api", taskDefinition="api", desiredCount=1)
    region = server.client("ecs").meta.region_name
    for deployment in ecs_backends[MOTO_ACCOUNT][region].services["shop:api"].deployments:
        deployment["createdAt"] = started
    role = server.client("iam").create_role(RoleName="hook", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("hook.py", "def handler(event, context):\n    return None\n")
    server.client("lambda").create_function(
        FunctionName="shop-hook", Runtime="python3.12", Role=role, Handler="hook.handler",
        Code={"ZipFile": package.getvalue()}, Environment={"Variables": {"MODE": "live"}})
    function = lambda_simple_backends[MOTO_ACCOUNT][region].get_function("shop-hook")
    function.last_modified = started.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def pipeline(server: MotoServer, report: Report) -> tuple[Any, str]:
    """The program's rule on moto's default bus, sending to a queue (without the delay: the test runs the
    function at the moments the delayed messages would arrive, in order)."""
    rule = declared(report, "aws:cloudwatch/eventRule:EventRule")
    events, sqs = server.client("events"), server.client("sqs")
    queue = sqs.create_queue(QueueName="restarts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule["name"], EventPattern=rule["eventPattern"])
    events.put_targets(Rule=rule["name"], Targets=[{"Id": "restarts", "Arn": arn}])
    return events, queue


def secret_arn(name: str, environment: str = "staging") -> str:
    return f"arn:aws:secretsmanager:{REGION}:210987654321:secret:shop/{environment}/{name}-AbCdEf"


def publish(events: Any, details: list[dict[str, Any]], detail_type: str = "AWS Service Event via CloudTrail") -> None:
    answer = events.put_events(Entries=[
        {"Source": "aws.secretsmanager", "DetailType": detail_type, "Detail": json.dumps(d), "Resources": []}
        for d in details])
    assert answer["FailedEntryCount"] == 0, answer


def received(server: MotoServer, queue: str) -> list[dict[str, Any]]:
    """Every message on the queue, as SQS records of a Lambda event, oldest rotation first."""
    sqs, records = server.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        records += [{"messageId": m["MessageId"], "body": m["Body"]} for m in batch]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return sorted(records, key=lambda r: json.loads(r["body"])["detail"]["eventTime"])


def succeeded(name: str, at: dt.datetime, shape: str = "additionalEventData", environment: str = "staging",
              event: str = "RotationSucceeded") -> dict[str, Any]:
    detail = cloudtrail_event(event, secret_arn(name, environment), REGION, shape)
    detail["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return detail


def environ(report: Report) -> dict[str, str]:
    return declared(report, "aws:lambda/function:Function")["environment"]["variables"]


def test_a_burst_restarts_each_consumer_once_and_a_later_rotation_again(
        aws: tuple[MotoServer, Recorded], report: Report) -> None:
    server, recorded = aws
    now = dt.datetime.now(UTC).replace(microsecond=0)
    consumers_in(server, started=now - dt.timedelta(hours=2))
    events, queue = pipeline(server, report)
    # Three rotations within the window, the secret named in either field AWS uses.
    publish(events, [succeeded("signing-key", now - dt.timedelta(minutes=9)),
                     succeeded("signing-key", now - dt.timedelta(minutes=7), shape="serviceEventDetails"),
                     succeeded("signing-key", now - dt.timedelta(minutes=5))])
    records = received(server, queue)
    assert len(records) == 3
    restarter = Restarter(server.client("ecs"), server.client("lambda"))
    # Each delayed message arrives alone, ten minutes after its rotation, in order.
    for record in records:
        assert handle({"Records": [record]}, environ(report), restarter) == {"batchItemFailures": []}
    assert recorded.deployments == ["shop/api"]
    assert recorded.updates == ["shop-hook"]
    variables = server.client("lambda").get_function_configuration(FunctionName="shop-hook")["Environment"]["Variables"]
    assert variables["MODE"] == "live" and ROTATED_AT in variables, "the function's own variables are kept"
    (primary,) = [d for d in server.client("ecs").describe_services(cluster="shop", services=["api"])[
        "services"][0]["deployments"] if d["status"] == "PRIMARY"]

    # SQS delivers at least once: a message handled again changes nothing.
    handle({"Records": records[:1]}, environ(report), restarter)
    assert recorded.deployments == ["shop/api"] and recorded.updates == ["shop-hook"]

    # A rotation after the restart (its tasks hold the value it replaced) restarts again.
    later = primary["createdAt"].astimezone(UTC) + dt.timedelta(seconds=2)
    publish(events, [succeeded("signing-key", later)])
    assert handle({"Records": received(server, queue)}, environ(report), restarter) == {"batchItemFailures": []}
    assert recorded.deployments == ["shop/api", "shop/api"]
    assert recorded.updates == ["shop-hook", "shop-hook"]


def test_one_batch_holding_a_whole_burst_restarts_once(aws: tuple[MotoServer, Recorded], report: Report) -> None:
    server, recorded = aws
    now = dt.datetime.now(UTC).replace(microsecond=0)
    consumers_in(server, started=now - dt.timedelta(hours=2))
    events, queue = pipeline(server, report)
    publish(events, [succeeded("signing-key", now - dt.timedelta(minutes=m)) for m in (9, 8, 6, 5)])
    records = received(server, queue)
    assert len(records) == 4
    restarter = Restarter(server.client("ecs"), server.client("lambda"))
    assert handle({"Records": records}, environ(report), restarter) == {"batchItemFailures": []}
    assert recorded.deployments == ["shop/api"] and recorded.updates == ["shop-hook"]


def test_consumers_started_after_the_rotation_are_left_alone(aws: tuple[MotoServer, Recorded],
                                                             report: Report) -> None:
    server, recorded = aws
    now = dt.datetime.now(UTC).replace(microsecond=0)
    consumers_in(server, started=now - dt.timedelta(minutes=1))
    events, queue = pipeline(server, report)
    publish(events, [succeeded("signing-key", now - dt.timedelta(minutes=9))])
    handle({"Records": received(server, queue)}, environ(report), Restarter(server.client("ecs"),
                                                                            server.client("lambda")))
    assert recorded.deployments == [] and recorded.updates == []


def test_only_this_environments_successful_rotations_restart(aws: tuple[MotoServer, Recorded],
                                                             report: Report) -> None:
    server, _ = aws
    now = dt.datetime.now(UTC).replace(microsecond=0)
    events, queue = pipeline(server, report)
    mine = [succeeded("signing-key", now), succeeded("internal-token", now, shape="serviceEventDetails")]
    others = [
        *(succeeded("signing-key", now, event=e) for e in ("RotationFailed", "RotationAbandoned",
                                                           "TestRotationFailed", "RotationStarted",
                                                           "TestRotationSucceeded")),
        succeeded("signing-key", now, environment="production"),
    ]
    publish(events, [*mine, *others])
    publish(events, [succeeded("signing-key", now)], detail_type="AWS API Call via CloudTrail")
    got = {json.loads(r["body"])["detail"]["eventID"] for r in received(server, queue)}
    assert got == {d["eventID"] for d in mine}


def test_a_failed_restart_is_retried_and_the_others_of_the_batch_are_done(
        aws: tuple[MotoServer, Recorded], report: Report) -> None:
    server, recorded = aws
    now = dt.datetime.now(UTC).replace(microsecond=0)
    consumers_in(server, started=now - dt.timedelta(hours=2))
    events, queue = pipeline(server, report)
    publish(events, [succeeded("signing-key", now - dt.timedelta(minutes=9))])
    records = received(server, queue)
    broken = json.loads(environ(report)["CONSUMER_TARGETS"])
    broken["targets"]["api"]["service"] = "gone"
    answer = handle({"Records": records}, {"CONSUMER_TARGETS": json.dumps(broken)},
                    Restarter(server.client("ecs"), server.client("lambda")))
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    assert recorded.updates == ["shop-hook"] and recorded.deployments == []


def test_the_window_fits_sqs_and_the_handler_is_in_the_package() -> None:
    assert consumers.RESTART_WINDOW_SECONDS <= consumers.SQS_MAX_DELAY_SECONDS == 900
    module, _, function = consumers.HANDLER.rpartition(".")
    assert (REPO / (module.replace(".", "/") + ".py")).is_file() and function == "lambda_handler"


def test_a_function_whose_variables_cannot_be_read_is_not_wiped(report: Report) -> None:
    """GetFunctionConfiguration answers `Environment: {Error: ...}` when the caller may not decrypt the
    variables (Lambda API reference, EnvironmentResponse / EnvironmentError); moto never does, so a stand-in
    client gives that answer. The restart must fail (and page) rather than replace them with one variable."""

    class Unreadable:
        def __init__(self) -> None:
            self.updates: list[dict[str, Any]] = []

        def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
            return {"FunctionName": FunctionName, "LastModified": "2020-01-01T00:00:00.000+0000",
                    "KMSKeyArn": f"arn:aws:kms:{REGION}:210987654321:key/{uuid.uuid4()}",
                    "Environment": {"Error": {"ErrorCode": "AccessDeniedException", "Message": "kms:Decrypt"}}}

        def update_function_configuration(self, **kwargs: Any) -> None:
            self.updates.append(kwargs)

    client = Unreadable()
    body = json.dumps({"time": "2026-11-30T02:17:48Z", "detail": succeeded("signing-key", dt.datetime.now(UTC))})
    answer = handle({"Records": [{"messageId": "m-1", "body": body}]}, {"CONSUMER_TARGETS": json.dumps(
        {"targets": {"hook": {"kind": "lambda", "function": "shop-hook"}},
         "secrets": {"shop/staging/signing-key": ["hook"]}})}, Restarter(None, client))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert client.updates == []
