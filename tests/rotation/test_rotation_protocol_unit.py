"""The dispatcher's Secrets Manager calls and its refusals, against botocore's Stubber: every request is
checked against the service model (parameter names and types) and must be exactly the expected one, and
errors AWS returns (which moto does not produce on demand) are answered with their exact messages."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from rotation.errors import (
    ExternalServiceError,
    RotationError,
    RotationNotEnabledError,
    SecretFormatError,
    SecretNotAllowedError,
    VersionStageError,
)
from rotation.protocol import MAX_OLDER_VERSIONS, STEPS, RotationContext, SecretStore, Strategy, rotate

NAME = "shop/staging/api-token"
ARN = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{NAME}-AbCdEf"
TOKEN = "11111111-2222-3333-4444-555555555555"


def vid(label: str) -> str:
    """A version id of the length the service model requires (32-64 characters)."""
    return f"{label}-".ljust(36, "0")


OLD = vid("old")


@pytest.fixture
def sm() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_an_aws_error_names_the_call_the_secret_and_the_code(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    stubber.add_client_error("describe_secret", "AccessDeniedException", "not allowed to describe",
                             expected_params={"SecretId": NAME})
    with pytest.raises(ExternalServiceError) as caught:
        SecretStore(client, NAME).describe()
    assert str(caught.value) == (
        f"Secrets Manager describe_secret failed for {NAME}: AccessDeniedException: not allowed to describe")


def test_a_connection_error_names_the_call_and_the_error_type() -> None:
    class Unreachable:
        def describe_secret(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com")

        def get_secret_value(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com")

    with pytest.raises(ExternalServiceError) as caught:
        SecretStore(Unreachable(), NAME).describe()
    assert str(caught.value) == f"Secrets Manager describe_secret failed for {NAME}: EndpointConnectionError"
    with pytest.raises(ExternalServiceError) as read:
        SecretStore(Unreachable(), NAME).value("AWSCURRENT")
    assert str(read.value) == f"Secrets Manager get_secret_value failed for {NAME}: EndpointConnectionError"


def test_reading_a_stage(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    store = SecretStore(client, NAME)
    stubber.add_response("get_secret_value", {"SecretString": "v1"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    assert store.required("AWSCURRENT") == "v1"
    stubber.add_response("get_secret_value", {"SecretString": "v2"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    assert store.value("AWSPENDING", TOKEN) == "v2"
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "no such version")
    assert store.value("AWSPREVIOUS", missing_ok=True) is None
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "no such version")
    with pytest.raises(ExternalServiceError) as missing:
        store.value("AWSPREVIOUS")
    assert str(missing.value) == (
        f"Secrets Manager get_secret_value failed for {NAME} (AWSPREVIOUS): ResourceNotFoundException")
    stubber.add_client_error("get_secret_value", "DecryptionFailure", "key disabled")
    with pytest.raises(ExternalServiceError) as denied:
        store.value("AWSCURRENT", missing_ok=True)
    assert str(denied.value) == f"Secrets Manager get_secret_value failed for {NAME} (AWSCURRENT): DecryptionFailure"
    stubber.add_response("get_secret_value", {"SecretBinary": b"\x00\x01"})
    with pytest.raises(SecretFormatError) as binary:
        store.value("AWSCURRENT")
    assert str(binary.value) == f"secret {NAME} (AWSCURRENT) has no SecretString (binary secret?)"


def test_writing_and_moving_stages(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    store = SecretStore(client, NAME)
    stubber.add_response("put_secret_value", {}, expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": "new", "VersionStages": ["AWSPENDING"]})
    store.put_pending(TOKEN, "new")
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN, "RemoveFromVersionId": OLD})
    store.move_stage("AWSCURRENT", to_version=TOKEN, from_version=OLD)
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSPENDING", "RemoveFromVersionId": TOKEN})
    store.move_stage("AWSPENDING", to_version=None, from_version=TOKEN)
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN})
    store.move_stage("AWSCURRENT", to_version=TOKEN, from_version=None)


def test_older_values_are_unlabelled_newest_first_and_bounded(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    day = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    versions = [{"VersionId": vid(f"v{i:02d}"), "CreatedDate": day + datetime.timedelta(days=i)} for i in range(9)]
    newest = day + datetime.timedelta(days=30)
    versions += [
        # Labelled versions are never tried, however new; nor is the one asked to skip.
        {"VersionId": vid("current"), "VersionStages": ["AWSCURRENT"], "CreatedDate": newest},
        {"VersionId": vid("pending"), "VersionStages": ["AWSPENDING", "custom"], "CreatedDate": newest},
        {"VersionId": vid("previous"), "VersionStages": ["AWSPREVIOUS"], "CreatedDate": newest},
        {"VersionId": vid("skipped"), "CreatedDate": newest},
        {"VersionId": vid("undated")},  # no date: oldest
    ]
    stubber.add_response("list_secret_version_ids", {"Versions": versions},
                         expected_params={"SecretId": NAME, "IncludeDeprecated": True})
    # Newest first: v08 (expired), v07 (binary), v06, v05, v04; five tried in all.
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "expired",
                             expected_params={"SecretId": NAME, "VersionId": vid("v08")})
    stubber.add_response("get_secret_value", {"SecretBinary": b"x"},
                         expected_params={"SecretId": NAME, "VersionId": vid("v07")})
    for i in (6, 5, 4):
        stubber.add_response("get_secret_value", {"SecretString": f"value-{i}"},
                             expected_params={"SecretId": NAME, "VersionId": vid(f"v{i:02d}")})
    found = list(SecretStore(client, NAME).older_values(skip={vid("skipped")}))
    assert found == [(vid("v06"), "value-6"), (vid("v05"), "value-5"), (vid("v04"), "value-4")]
    assert MAX_OLDER_VERSIONS == 5
    stubber.add_response("list_secret_version_ids", {}, expected_params={"SecretId": NAME, "IncludeDeprecated": True})
    assert list(SecretStore(client, NAME).older_values(skip=set())) == []


def test_a_context_reads_other_secrets_and_skips_its_own_version(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    ctx = RotationContext(secret_name=NAME, token=TOKEN, store=SecretStore(client, NAME), client=client)
    stubber.add_response("get_secret_value", {"SecretString": "admin"},
                         expected_params={"SecretId": "shop/staging/admin", "VersionStage": "AWSCURRENT"})
    assert ctx.fetch_secret("shop/staging/admin", "masterarn of the secret") == "admin"
    with pytest.raises(SecretFormatError) as caught:
        ctx.fetch_secret("", "masterarn of the secret")
    assert str(caught.value) == "masterarn of the secret is empty"
    stubber.add_response("list_secret_version_ids", {"Versions": [{"VersionId": TOKEN}, {"VersionId": OLD}]},
                         expected_params={"SecretId": NAME, "IncludeDeprecated": True})
    stubber.add_response("get_secret_value", {"SecretString": "older"},
                         expected_params={"SecretId": NAME, "VersionId": OLD})
    assert list(ctx.older_values()) == [(OLD, "older")]
    with pytest.raises(NotImplementedError) as missing:
        Recording().create_first(ctx)
    assert str(missing.value) == "recording"


class Recording(Strategy):
    name = "recording"
    installs = True
    parameters = frozenset()

    def __init__(self) -> None:
        super().__init__({})
        self.calls: list[str] = []

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        self.calls.append("create_pending")
        return "pending-value"

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        got = (pending, current, ctx.secret_name, ctx.token)
        assert got == ("pending-value", "current", NAME, TOKEN)
        self.calls.append("set")

    def test(self, pending: str, ctx: RotationContext) -> None:
        self.calls.append("test")


class Retiring(Recording):
    retires = True

    def finish(self, current: str, ctx: RotationContext) -> None:
        self.calls.append(f"finish {current} {ctx.secret_name}")


def _event(step: str = "createSecret", secret: str = NAME, token: str = TOKEN) -> dict[str, str]:
    return {"Step": step, "SecretId": secret, "ClientRequestToken": token}


@pytest.mark.parametrize(("event", "message"), [
    ({"SecretId": NAME, "ClientRequestToken": TOKEN}, "rotation event lacks 'Step'"),
    ({"Step": "createSecret", "SecretId": "", "ClientRequestToken": TOKEN}, "rotation event lacks 'SecretId'"),
    ({"Step": "createSecret", "SecretId": NAME, "ClientRequestToken": 7}, "rotation event lacks 'ClientRequestToken'"),
    (_event("rotateNow"), f"unknown rotation step 'rotateNow'; expected one of {list(STEPS)}"),
    (_event(secret="shop/staging/other"),
     f"this function does not rotate secret 'shop/staging/other'; it rotates ['{NAME}']"),
])
def test_bad_events_are_refused_before_any_call(event: dict[str, Any], message: str, sm: tuple[Any, Stubber]) -> None:
    client, _ = sm
    with pytest.raises(RotationError) as caught:
        rotate(event, client, {NAME: Recording()})
    assert str(caught.value) == message
    assert STEPS == ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.mark.parametrize(("event", "kind"), [(["createSecret"], "list"), ("createSecret", "str"), (None, "NoneType")])
def test_an_event_that_is_not_an_object_is_refused_by_its_type(event: object, kind: str,
                                                               sm: tuple[Any, Stubber]) -> None:
    client, _ = sm
    with pytest.raises(RotationError) as caught:
        rotate(event, client, {NAME: Recording()})  # type: ignore[arg-type]
    assert str(caught.value) == f"a rotation event is a JSON object, not {kind}"


def _describe(stubber: Stubber, name: str | None = NAME, enabled: bool = True,
              stages: dict[str, list[str]] | None = None, secret_id: str = ARN) -> None:
    response: dict[str, Any] = {
        "RotationEnabled": enabled,
        "VersionIdsToStages": stages if stages is not None else {OLD: ["AWSCURRENT"], TOKEN: ["AWSPENDING"]},
    }
    if name is not None:
        response["Name"] = name
    stubber.add_response("describe_secret", response, expected_params={"SecretId": secret_id})


def test_a_secret_found_by_arn_must_be_one_of_ours(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _describe(stubber, name="shop/staging/other")
    with pytest.raises(SecretNotAllowedError) as caught:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(caught.value) == f"this function does not rotate secret 'shop/staging/other'; it rotates ['{NAME}']"


def test_refusals_after_describe(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _describe(stubber, enabled=False)
    with pytest.raises(RotationNotEnabledError) as off:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(off.value) == f"rotation is not enabled for secret {NAME}"
    _describe(stubber, stages={OLD: ["AWSCURRENT"]})
    with pytest.raises(VersionStageError) as unknown:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(unknown.value) == f"version {TOKEN} of secret {NAME} does not exist"
    _describe(stubber, stages={OLD: ["AWSCURRENT"], TOKEN: ["AWSPREVIOUS"]})
    with pytest.raises(VersionStageError) as stale:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(stale.value) == f"version {TOKEN} of secret {NAME} is not AWSPENDING (stages ['AWSPREVIOUS'])"


def test_a_strategy_that_needs_a_current_credential_refuses_an_empty_secret(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _describe(stubber, stages={TOKEN: ["AWSPENDING"]}, secret_id=NAME)
    strategy = Recording()
    with pytest.raises(SecretFormatError) as caught:
        rotate(_event(), client, {NAME: strategy})
    assert str(caught.value) == (
        f"secret {NAME} has no AWSCURRENT value, and the recording strategy needs the current credential to "
        "log in with: store a first value, then rotate")
    assert strategy.calls == []


def test_each_step_reads_what_it_needs_and_calls_the_strategy(sm: tuple[Any, Stubber], rotation_logs: Any) -> None:
    client, stubber = sm
    strategy = Recording()
    # createSecret: derive from AWSCURRENT; store AWSPENDING (no read of it first: PutSecretValue refuses to
    # change a stored value, see the next test).
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "current"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    stubber.add_response("put_secret_value", {}, expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": "pending-value",
        "VersionStages": ["AWSPENDING"]})
    rotate(_event(), client, {NAME: strategy})
    # setSecret: the pending value (its read carries the name and stages: no DescribeSecret), then current.
    pending = {"Name": NAME, "VersionStages": ["AWSPENDING"], "SecretString": "pending-value"}
    stubber.add_response("get_secret_value", pending,
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    stubber.add_response("get_secret_value", {"SecretString": "current"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    rotate(_event("setSecret"), client, {NAME: strategy})
    # testSecret: the pending value only.
    stubber.add_response("get_secret_value", pending,
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    rotate(_event("testSecret"), client, {NAME: strategy})
    # finishSecret: the pending value is read (never move AWSCURRENT onto nothing), AWSCURRENT moves from the
    # old version, then AWSPENDING is cleared.
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "pending-value"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN, "RemoveFromVersionId": OLD})
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSPENDING", "RemoveFromVersionId": TOKEN})
    rotate(_event("finishSecret"), client, {NAME: strategy})
    assert strategy.calls == ["create_pending", "set", "test"]
    # Once AWSCURRENT, every step is a no-op after describe (setSecret and testSecret first try the
    # AWSPENDING read, which AWS refuses for a version that no longer has that stage).
    for step in STEPS[:3]:
        if step != "createSecret":
            stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "not pending",
                                     expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING",
                                                      "VersionId": TOKEN})
        _describe(stubber, stages={TOKEN: ["AWSCURRENT"], OLD: ["AWSPREVIOUS"]}, secret_id=NAME)
        rotate(_event(step), client, {NAME: strategy})
    assert strategy.calls == ["create_pending", "set", "test"]
    # What operators read: each step names the secret and the version, never a value.
    assert [r.getMessage() for r in rotation_logs.records if r.name == "rotation.protocol"] == [
        f"createSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"createSecret: stored a new AWSPENDING value as version {TOKEN}",
        f"setSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"testSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"finishSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"finishSecret: AWSCURRENT moved to version {TOKEN} of {NAME}",
        f"finishSecret: rotation of {NAME} to version {TOKEN} complete",
        f"createSecret: version {TOKEN} of {NAME} is already AWSCURRENT; nothing to do",
        f"setSecret: version {TOKEN} of {NAME} is already AWSCURRENT; nothing to do",
        f"testSecret: version {TOKEN} of {NAME} is already AWSCURRENT; nothing to do",
    ]


def test_a_pending_value_is_reused_and_a_retiring_strategy_finishes(sm: tuple[Any, Stubber],
                                                                    rotation_logs: Any) -> None:
    client, stubber = sm
    strategy = Retiring()
    # A retried createSecret: the put of a second value under the token is refused (AWS's documented rule for
    # an existing version), and the value stored by the first run is kept.
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "current"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    stubber.add_client_error("put_secret_value", "ResourceExistsException", "already in use", expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": "pending-value",
        "VersionStages": ["AWSPENDING"]})
    stubber.add_response("get_secret_value", {"SecretString": "pending-value"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    rotate(_event(), client, {NAME: strategy})
    assert strategy.calls == ["create_pending"]
    # finishSecret after a run that moved AWSCURRENT and died: the hook runs with the current value.
    _describe(stubber, stages={TOKEN: ["AWSCURRENT", "AWSPENDING"], OLD: ["AWSPREVIOUS"]}, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "new"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSPENDING", "RemoveFromVersionId": TOKEN})
    rotate(_event("finishSecret"), client, {NAME: strategy})
    assert strategy.calls == ["create_pending", f"finish new {NAME}"]
    assert [r.getMessage() for r in rotation_logs.records if r.name == "rotation.protocol"] == [
        f"createSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"createSecret: reusing the existing AWSPENDING value of version {TOKEN}",
        f"finishSecret: resuming the finish of version {TOKEN} of {NAME}",
        f"finishSecret: rotation of {NAME} to version {TOKEN} complete",
    ]


def test_a_description_without_a_name_or_versions(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _describe(stubber, name=None)
    with pytest.raises(SecretNotAllowedError) as nameless:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(nameless.value) == f"this function does not rotate secret {ARN!r}; it rotates ['{NAME}']"
    stubber.add_response("describe_secret", {"Name": NAME, "RotationEnabled": True}, expected_params={"SecretId": ARN})
    with pytest.raises(VersionStageError) as versionless:
        rotate(_event(secret=ARN), client, {NAME: Recording()})
    assert str(versionless.value) == f"version {TOKEN} of secret {NAME} does not exist"


class Installer(Recording):
    """Installs nothing, and makes its value from the master secret it reads through the context."""

    installs = False

    def create_pending(self, current: str, ctx: RotationContext) -> str:
        return ctx.fetch_secret("shop/staging/admin", "masterarn") + "-derived"


def test_a_strategy_that_installs_nothing_and_reads_its_master(sm: tuple[Any, Stubber], rotation_logs: Any) -> None:
    client, stubber = sm
    strategy = Installer()
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "current"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    stubber.add_response("get_secret_value", {"SecretString": "admin"},
                         expected_params={"SecretId": "shop/staging/admin", "VersionStage": "AWSCURRENT"})
    stubber.add_response("put_secret_value", {}, expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": "admin-derived",
        "VersionStages": ["AWSPENDING"]})
    rotate(_event(), client, {NAME: strategy})
    rotate(_event("setSecret"), client, {NAME: strategy})  # no call at all: the function installs nothing
    assert strategy.calls == []
    assert [r.getMessage() for r in rotation_logs.records if r.name == "rotation.protocol"][-1] == (
        "setSecret: this function's strategy installs nothing")


def test_errors_without_the_usual_fields() -> None:
    from botocore.exceptions import ClientError

    class Bare:
        def describe_secret(self, **_: Any) -> None:
            raise ClientError({}, "DescribeSecret")

        def get_secret_value(self, **_: Any) -> None:
            raise ClientError({}, "GetSecretValue")

    with pytest.raises(ExternalServiceError) as described:
        SecretStore(Bare(), NAME).describe()
    assert str(described.value) == f"Secrets Manager describe_secret failed for {NAME}: ?: "
    with pytest.raises(ExternalServiceError) as read:
        SecretStore(Bare(), NAME).value("AWSPREVIOUS", missing_ok=True)
    assert str(read.value) == f"Secrets Manager get_secret_value failed for {NAME} (AWSPREVIOUS): ?"


class FirstValue(Recording):
    makes_first_value = True

    def create_first(self, ctx: RotationContext) -> str:
        return f"first-of-{ctx.secret_name}"


def test_a_secret_created_empty_gets_its_first_value_from_the_strategy(sm: tuple[Any, Stubber],
                                                                       rotation_logs: Any) -> None:
    client, stubber = sm
    _describe(stubber, stages={TOKEN: ["AWSPENDING"]}, secret_id=NAME)
    stubber.add_response("put_secret_value", {}, expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": f"first-of-{NAME}",
        "VersionStages": ["AWSPENDING"]})
    rotate(_event(), client, {NAME: FirstValue()})
    assert [r.getMessage() for r in rotation_logs.records if r.name == "rotation.protocol"][1] == (
        f"createSecret: secret {NAME} has no AWSCURRENT value; making its first value")


def test_a_retiring_strategy_finishes_with_the_value_read_before_the_move(sm: tuple[Any, Stubber]) -> None:
    """finishSecret reads AWSPENDING before moving AWSCURRENT onto it and hands that value to the finish
    hook: no second read of AWSCURRENT."""
    client, stubber = sm
    strategy = Retiring()
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "new"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN, "RemoveFromVersionId": OLD})
    stubber.add_response("update_secret_version_stage", {}, expected_params={
        "SecretId": NAME, "VersionStage": "AWSPENDING", "RemoveFromVersionId": TOKEN})
    rotate(_event("finishSecret"), client, {NAME: strategy})
    assert strategy.calls == [f"finish new {NAME}"]


def test_finish_refuses_a_version_without_a_value(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _describe(stubber, secret_id=NAME)
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "no value",
                             expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    with pytest.raises(VersionStageError) as caught:
        rotate(_event("finishSecret"), client, {NAME: Retiring()})
    assert str(caught.value) == (f"version {TOKEN} of secret {NAME} has no value yet (createSecret has not run); "
                                 "AWSCURRENT stays")


def test_a_refused_put_with_nothing_stored_under_the_token_fails_with_the_puts_error(sm: tuple[Any, Stubber]) -> None:
    """createSecret reuses a stored value only when one exists: any other refusal of the put stands."""
    client, stubber = sm
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "current"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    stubber.add_client_error("put_secret_value", "LimitExceededException", "too many versions", expected_params={
        "SecretId": NAME, "ClientRequestToken": TOKEN, "SecretString": "pending-value",
        "VersionStages": ["AWSPENDING"]})
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "no value",
                             expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    with pytest.raises(ExternalServiceError) as caught:
        rotate(_event(), client, {NAME: Recording()})
    assert str(caught.value) == (
        f"Secrets Manager put_secret_value failed for {NAME}: LimitExceededException: too many versions")


# setSecret and testSecret read the token's AWSPENDING version first (its response names the secret and the
# version's stages, so no DescribeSecret); each outcome of that read below, then the describe fallback.


def _pending(stubber: Stubber, response: dict[str, Any], secret_id: str = NAME) -> None:
    stubber.add_response("get_secret_value", response,
                         expected_params={"SecretId": secret_id, "VersionStage": "AWSPENDING", "VersionId": TOKEN})


class Arguments(Recording):
    """Records what set and test were given."""

    def set(self, pending: str, current: str, ctx: RotationContext) -> None:
        self.calls.append(f"set {pending!r} {current!r} {ctx.secret_name} {ctx.token}")

    def test(self, pending: str, ctx: RotationContext) -> None:
        self.calls.append(f"test {pending!r} {ctx.secret_name} {ctx.token}")


class Token(Arguments):
    name = "token"
    installs = False


def _protocol_logs(rotation_logs: Any) -> list[str]:
    return [r.getMessage() for r in rotation_logs.records if r.name == "rotation.protocol"]


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_an_unreachable_service_on_the_pending_read_is_an_external_error(step: str) -> None:
    class Unreachable:
        def get_secret_value(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com")

    with pytest.raises(ExternalServiceError) as caught:
        rotate(_event(step, secret=ARN), Unreachable(), {NAME: Arguments()})
    assert str(caught.value) == f"Secrets Manager get_secret_value failed for {ARN}: EndpointConnectionError"


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_the_pending_read_must_name_one_of_our_secrets(step: str, sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    strategy = Arguments()
    _pending(stubber, {"Name": "shop/staging/other", "VersionStages": ["AWSPENDING"], "SecretString": "x"}, ARN)
    with pytest.raises(SecretNotAllowedError) as other:
        rotate(_event(step, secret=ARN), client, {NAME: strategy})
    assert str(other.value) == f"this function does not rotate secret 'shop/staging/other'; it rotates ['{NAME}']"
    _pending(stubber, {"VersionStages": ["AWSPENDING"], "SecretString": "x"}, ARN)
    with pytest.raises(SecretNotAllowedError) as nameless:
        rotate(_event(step, secret=ARN), client, {NAME: strategy})
    assert str(nameless.value) == f"this function does not rotate secret {ARN!r}; it rotates ['{NAME}']"
    assert strategy.calls == []


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_a_pending_version_that_is_already_current_is_left_alone(step: str, sm: tuple[Any, Stubber],
                                                                 rotation_logs: Any) -> None:
    """A finishSecret that moved AWSCURRENT and died leaves both labels on the version: a replayed setSecret
    or testSecret must not install or test again (the stubber allows no other call)."""
    client, stubber = sm
    strategy = Arguments()
    _pending(stubber, {"Name": NAME, "VersionStages": ["AWSCURRENT", "AWSPENDING"], "SecretString": "new"})
    rotate(_event(step), client, {NAME: strategy})
    assert strategy.calls == []
    assert _protocol_logs(rotation_logs) == [f"{step}: version {TOKEN} of {NAME} is already AWSCURRENT; nothing to do"]


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_a_binary_pending_version_is_refused(step: str, sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    strategy = Arguments()
    _pending(stubber, {"Name": NAME, "VersionStages": ["AWSPENDING"], "SecretBinary": b"\x00\x01"})
    with pytest.raises(SecretFormatError) as caught:
        rotate(_event(step), client, {NAME: strategy})
    assert str(caught.value) == f"secret {NAME} (AWSPENDING) has no SecretString (binary secret?)"
    assert strategy.calls == []


def test_a_pending_read_without_stages_tests_the_value(sm: tuple[Any, Stubber], rotation_logs: Any) -> None:
    client, stubber = sm
    strategy = Arguments()
    _pending(stubber, {"Name": NAME, "SecretString": "new"})
    rotate(_event("testSecret"), client, {NAME: strategy})
    assert strategy.calls == [f"test 'new' {NAME} {TOKEN}"]
    assert _protocol_logs(rotation_logs) == [f"testSecret: secret {NAME}, version {TOKEN}, strategy recording"]


def test_set_gets_an_empty_current_value_for_a_secret_without_one(sm: tuple[Any, Stubber]) -> None:
    """A secret created empty (its first value made by createSecret): setSecret passes "" as AWSCURRENT."""
    client, stubber = sm
    strategy = Arguments()
    _pending(stubber, {"Name": NAME, "VersionStages": ["AWSPENDING"], "SecretString": "new"})
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "no current",
                             expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    rotate(_event("setSecret"), client, {NAME: strategy})
    assert strategy.calls == [f"set 'new' '' {NAME} {TOKEN}"]


def test_a_function_with_an_installing_and_a_non_installing_strategy(sm: tuple[Any, Stubber],
                                                                     rotation_logs: Any) -> None:
    """One function rotating a token and a credential: setSecret of the token reads its pending version (to
    learn which secret it is) and installs nothing."""
    client, stubber = sm
    token, credential = Token(), Arguments()
    strategies: dict[str, Strategy] = {NAME: token, "shop/staging/db": credential}
    _pending(stubber, {"Name": NAME, "VersionStages": ["AWSPENDING"], "SecretString": "new"})
    rotate(_event("setSecret"), client, strategies)
    assert token.calls == [] and credential.calls == []
    assert _protocol_logs(rotation_logs) == [
        f"setSecret: secret {NAME}, version {TOKEN}, strategy token",
        "setSecret: the token strategy installs nothing",
    ]


def test_a_function_that_rotates_nothing_refuses_a_secret_named_by_arn(sm: tuple[Any, Stubber]) -> None:
    client, stubber = sm
    _pending(stubber, {"Name": NAME, "VersionStages": ["AWSPENDING"], "SecretString": "new"}, ARN)
    with pytest.raises(SecretNotAllowedError) as caught:
        rotate(_event("setSecret", secret=ARN), client, {})
    assert str(caught.value) == f"this function does not rotate secret '{NAME}'; it rotates []"


def _pending_read_refused(stubber: Stubber, secret_id: str = NAME) -> None:
    stubber.add_client_error("get_secret_value", "ResourceNotFoundException", "not pending",
                             expected_params={"SecretId": secret_id, "VersionStage": "AWSPENDING",
                                              "VersionId": TOKEN})


@pytest.mark.parametrize("step", ["setSecret", "testSecret"])
def test_a_refused_pending_read_is_explained_by_describe(step: str, sm: tuple[Any, Stubber]) -> None:
    """When the AWSPENDING read fails, DescribeSecret says why: here rotation was turned off meanwhile."""
    client, stubber = sm
    strategy = Arguments()
    _pending_read_refused(stubber)
    _describe(stubber, enabled=False, secret_id=NAME)
    with pytest.raises(RotationNotEnabledError) as caught:
        rotate(_event(step), client, {NAME: strategy})
    assert str(caught.value) == f"rotation is not enabled for secret {NAME}"
    assert strategy.calls == []


def test_after_describe_set_and_test_read_the_pending_and_current_values(sm: tuple[Any, Stubber],
                                                                        rotation_logs: Any) -> None:
    """The pending read failed (a transient error), describe shows the version AWSPENDING: the steps go on
    through describe's reading of the stages."""
    client, stubber = sm
    strategy = Arguments()
    _pending_read_refused(stubber)
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "new"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    stubber.add_response("get_secret_value", {"SecretString": "old"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSCURRENT"})
    rotate(_event("setSecret"), client, {NAME: strategy})
    # A secret with no AWSCURRENT yet: set gets "" and AWSCURRENT is not read.
    _pending_read_refused(stubber)
    _describe(stubber, stages={TOKEN: ["AWSPENDING"]}, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "first"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    rotate(_event("setSecret"), client, {NAME: strategy})
    _pending_read_refused(stubber)
    _describe(stubber, secret_id=NAME)
    stubber.add_response("get_secret_value", {"SecretString": "new"},
                         expected_params={"SecretId": NAME, "VersionStage": "AWSPENDING", "VersionId": TOKEN})
    rotate(_event("testSecret"), client, {NAME: strategy})
    assert strategy.calls == [f"set 'new' 'old' {NAME} {TOKEN}", f"set 'first' '' {NAME} {TOKEN}",
                              f"test 'new' {NAME} {TOKEN}"]
    assert _protocol_logs(rotation_logs) == [
        f"setSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"setSecret: secret {NAME}, version {TOKEN}, strategy recording",
        f"testSecret: secret {NAME}, version {TOKEN}, strategy recording",
    ]


def test_after_describe_a_non_installing_strategy_reads_nothing(sm: tuple[Any, Stubber], rotation_logs: Any) -> None:
    client, stubber = sm
    token = Token()
    _pending_read_refused(stubber)
    _describe(stubber, secret_id=NAME)
    rotate(_event("setSecret"), client, {NAME: token, "shop/staging/db": Arguments()})
    assert token.calls == []
    assert _protocol_logs(rotation_logs)[-1] == "setSecret: the token strategy installs nothing"
