"""A test engine: `pulumi up`, `pulumi refresh` and `pulumi destroy` of the program's Secrets Manager resources,
played against moto with the semantics of the provider behind pulumi-aws (terraform-provider-aws v6).

It takes the resources one run of the program registered (preview/runtime.py's ProgramRun: inputs, property
dependencies, `ignore_changes`, `import_`, `delete_before_replace`) and keeps a state between steps, as a
stack does. Every rule below names where the provider or the engine does the same; `TF` is
hashicorp/terraform-provider-aws `internal/service/secretsmanager/`, read at commit 0042e8ea (secret_version.go,
line numbers), 00c21ced (secret.go) and 0413c661 (secret_rotation.go; function names).

- Create: Secret -> CreateSecret (TF secret.go resourceSecretCreate); SecretVersion -> PutSecretValue with a new
  ClientRequestToken, VersionStages only when given (secret_version.go 108-162, 140-141); SecretRotation ->
  RotateSecret with RotateImmediately (default true), RotationRules and RotationLambdaARN (secret_rotation.go
  resourceSecretRotationCreate). Each create ends with a Read.
- Read (refresh): a resource AWS no longer has is removed from the state, not an error: DescribeSecret
  NotFound or DeletedDate set (secret.go resourceSecretRead, findSecretByID); GetSecretValue(VersionId)
  NotFound, "because it was deleted" or "marked for deletion" (secret_version.go 174-178, 358-365). A
  version's secret_string is read by its VersionId and its version_stages as AWS has them now (185-190).
- Diff: the new inputs, after `ignore_changes` (the engine copies an ignored property from the old inputs or
  drops it when the old inputs lack it: pulumi/pulumi pkg/resource/deploy step_generator.go
  processIgnoreChanges), against what Read last set for a property the provider reads back, and against the
  old inputs otherwise. An Optional+Computed property the program does not set never differs
  (version_stages, secret_version.go 98-103).
- ForceNew -> replace: Secret `name` (secret.go schema); SecretVersion `secret_id`, `secret_string`
  (secret_version.go 60-64, 73-79); SecretRotation `secret_id` (secret_rotation.go schema). Create before
  delete unless the resource asks for `delete_before_replace`.
- Update: a Secret's description/kms_key_id -> UpdateSecret, tags -> TagResource/UntagResource
  (resourceSecretUpdate); a SecretVersion's version_stages -> UpdateSecretVersionStage per added label
  (MoveToVersionId, plus RemoveFromVersionId of the AWSCURRENT holder for AWSCURRENT) and per removed label
  except AWSCURRENT (secret_version.go 212-296); a SecretRotation -> RotateSecret again when its function or
  rules change (resourceSecretRotationUpdate), nothing for rotate_immediately alone.
- Delete: Secret -> DeleteSecret with the recovery window (resourceSecretDelete); SecretVersion ->
  UpdateSecretVersionStage RemoveFromVersionId for every label in the state but AWSCURRENT (secret_version.go
  299-335); SecretRotation -> CancelRotateSecret (resourceSecretRotationDelete).
- retainOnDelete (pulumi/pulumi at commit 1b594989, `pkg/resource/deploy/`): the state records the option as the
  program gives it on every registration, a Same step included (step_generator.go generateSteps, lines 796-797 and
  828, builds the new state's RetainOnDelete from the goal; step.go SameStep.Apply, 173-214, keeps that new state
  with the old ID and outputs; the snapshot is written for a change of RetainOnDelete alone:
  pkg/backend/snapshot.go sameSnapshotMutation.mustWrite 300-303, pkg/engine/journal_snapshot.go 441-443). A
  delete, a replacement's delete of the old resource and a destroy decide by the OLD state's flag: with it,
  DeleteStep.Apply calls no provider Delete and the resource only leaves the state (step.go 661,
  `else if s.old.RetainOnDelete`; pkg/engine/lifecycletest/retain_on_delete_test.go TestRetainOnDelete).
- pulumi-random resources (`random:` types) live in the state only: Create makes the value in the provider process
  (no AWS call), any change of inputs replaces (every input is RequiresReplace), Delete does nothing
  (hashicorp/terraform-provider-random `internal/provider/resource_bytes.go`, `bytesResource.Delete`: empty, the
  framework removes the resource from the state).
- Import (`import_`): Read of the given id; an input that differs from what was read fails the import
  (ignored properties excepted), as `pulumi up` does for an imported resource.

- Write-only value (`secret_string_wo` with `secret_string_wo_version`; the program does not use it, see
  docs/state.md): Create sends it as SecretString; Read of a version whose state has `has_secret_string_wo` lists
  the secret's versions (ListSecretVersionIds with IncludeDeprecated) instead of GetSecretValue and sets
  secret_string to null (terraform-provider-aws after hashicorp/terraform-provider-aws#44876: secret_version.go
  resourceSecretVersionRead, findSecretVersionEntryByTwoPartKey; internal/flex HasWriteOnlyValue reads
  `has_<attr>` from the state). The write-only value itself never differs (it is not in the state the provider
  diffs); `secret_string_wo_version` is ForceNew. `secret_string` is Optional but not Computed: removing it from
  the inputs while the state holds a value is a change, and ForceNew.

What it does not emulate: any other resource type (KMS keys, IAM, Lambda, the resource policy: a reference to
one is translated through `externals`); replicas; the provider's retries and propagation waits; partial
failures in the middle of an `up` (a failing call raises and leaves the state as it was before that step);
dependents replaced because of a delete-before-replace; `pulumi refresh` updating inputs (inputs stay as last
applied); nested `ignore_changes` paths; secret_binary.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from preview.model import CollectedResource, plain

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
HANDLED = (SECRET, VERSION, ROTATION)
RANDOM = "random:"
"""Type prefix of pulumi-random's resources: state only."""
_ORDER = {SECRET: 0, VERSION: 1, ROTATION: 2}


def _order(kind: str) -> int:
    return -1 if kind.startswith(RANDOM) else _ORDER[kind]
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"

FORCE_NEW = {SECRET: {"name"}, VERSION: {"secretId", "secretString", "secretStringWoVersion"},
             ROTATION: {"secretId"}}
"""ForceNew properties (see the module docstring for where each is declared)."""
WRITE_ONLY = {VERSION: {"secretStringWo"}}
"""Write-only inputs: sent on create, never read back, never part of a diff."""
NOT_COMPUTED = {VERSION: {"secretString"}}
"""Read back, but Optional without Computed: left out of the inputs while the state holds a value, it differs."""
READ_BACK = {
    SECRET: {"name", "description", "kmsKeyId", "tags"},
    VERSION: {"secretId", "secretString", "versionStages"},
    ROTATION: {"secretId", "rotationLambdaArn", "rotationRules"},
}
"""Properties the provider's Read sets from AWS (the rest stay as last applied)."""

Operation = Literal["create", "update", "replace", "delete", "import", "drop"]


class ImportMismatch(Exception):
    """An imported resource differs from the program's inputs: the engine refuses the import."""


@dataclass
class Entry:
    """One resource in the state."""

    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    """The inputs as last applied (ignored properties as they were before)."""
    outputs: dict[str, Any]
    """What the provider's Read last set."""
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    """As the program last registered it: a delete of this entry calls no provider Delete."""


@dataclass(frozen=True)
class Step:
    op: Operation
    urn: str
    changed: tuple[str, ...] = ()
    retained: bool = False
    """A delete of a resource whose state has retainOnDelete: it left the state, the provider was not called."""


@dataclass
class Engine:
    """A stack's state and the provider's operations on it, against one Secrets Manager client."""

    sm: Any
    """boto3 Secrets Manager client (moto, the stack's region)."""
    externals: Mapping[str, str | None] = field(default_factory=dict)
    """A value in the program's inputs that names a resource the engine does not apply (a rotation function's
    ARN, the KMS key's) -> the real one in moto, or None to leave the property out."""
    state: dict[str, Entry] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    """Everything every `up`, `refresh` and `destroy` did, in order."""
    created: list[str] = field(default_factory=list)
    """The id of every resource the engine ever created."""
    provider_deletes: list[str] = field(default_factory=list)
    """The id of every resource whose provider Delete the engine called."""

    # ------------------------------------------------------------------ the CLI's commands

    def up(self, resources: Iterable[CollectedResource], *, dry_run: bool = False) -> list[Step]:
        """`pulumi up` (or `pulumi preview` with dry_run) of these registered resources; the steps it takes."""
        desired = sorted((r for r in resources if (r.type in HANDLED or r.type.startswith(RANDOM)) and r.custom),
                         key=lambda r: (_order(r.type), r.urn))
        steps: list[Step] = []
        for record in desired:
            entry = self.state.get(record.urn)
            inputs = self._inputs(record, entry)
            if entry is None:
                op: Operation = "import" if record.import_id else "create"
                steps.append(Step(op, record.urn))
                if not dry_run:
                    self.state[record.urn] = (self._import(record, inputs) if record.import_id
                                              else self._create(record, inputs))
                continue
            changed = (tuple(sorted(p for p in set(inputs) | set(entry.inputs) if inputs.get(p) != entry.inputs.get(p)))
                       if record.type.startswith(RANDOM) else self._diff(entry, inputs, set(record.ignore_changes)))
            if not changed:
                if not dry_run:  # a Same step: the new state carries the option as registered now
                    entry.retain_on_delete = record.retain_on_delete
                continue
            if record.type.startswith(RANDOM) or set(changed) & FORCE_NEW[record.type]:
                # The old resource's delete goes by the old state's flag (DeleteStep of s.old).
                steps.append(Step("replace", record.urn, changed, retained=entry.retain_on_delete))
                if not dry_run:
                    self._replace(record, entry, inputs)
            else:
                steps.append(Step("update", record.urn, changed))
                if not dry_run:
                    self._update(entry, inputs)
                    entry.retain_on_delete = record.retain_on_delete
        wanted = {r.urn for r in desired}
        for entry in sorted(self.state.values(), key=lambda e: (-_order(e.type), e.urn)):
            if entry.urn not in wanted:
                steps.append(Step("delete", entry.urn, retained=entry.retain_on_delete))
                if not dry_run:
                    self._delete(entry)
                    del self.state[entry.urn]
        if not dry_run:
            self.steps += steps
        return steps

    def refresh(self) -> list[Step]:
        """`pulumi refresh`: every resource read again; one AWS no longer has is dropped from the state."""
        steps = []
        for urn, entry in sorted(self.state.items()):
            if entry.type.startswith(RANDOM):
                continue  # nothing to read: the value is the state's
            read = self._read(entry.type, entry.id, write_only=bool(entry.outputs.get("hasSecretStringWo")))
            if read is None:
                del self.state[urn]
                steps.append(Step("drop", urn))
            else:
                entry.outputs = read
        self.steps += steps
        return steps

    def destroy(self) -> list[Step]:
        steps = []
        for entry in sorted(self.state.values(), key=lambda e: (-_order(e.type), e.urn)):
            self._delete(entry)
            steps.append(Step("delete", entry.urn, retained=entry.retain_on_delete))
        self.state.clear()
        self.steps += steps
        return steps

    # ------------------------------------------------------------------ inputs and diff

    def _inputs(self, record: CollectedResource, entry: Entry | None) -> dict[str, Any]:
        inputs: dict[str, Any] = plain(copy.deepcopy(record.inputs))
        for prop, deps in record.property_dependencies.items():
            applied = [self.state[d] for d in deps if d in self.state]
            # Only a property that is the dependency's id (an ARN): a value built from it (a secret_string that
            # names a master's ARN) is not the reference itself.
            if prop in inputs and len(applied) == 1 and str(inputs[prop]).startswith("arn:"):
                inputs[prop] = applied[0].id  # the id the dependency has in AWS, not the mock's
        for prop, value in list(inputs.items()):
            if isinstance(value, str) and value in self.externals:
                if self.externals[value] is None:
                    del inputs[prop]
                else:
                    inputs[prop] = self.externals[value]
        if entry is not None:  # pulumi/pulumi step_generator.go processIgnoreChanges
            for prop in record.ignore_changes:
                if prop in entry.inputs:
                    inputs[prop] = copy.deepcopy(entry.inputs[prop])
                else:
                    inputs.pop(prop, None)
        return inputs

    def _diff(self, entry: Entry, inputs: Mapping[str, Any], ignored: set[str]) -> tuple[str, ...]:
        changed = []
        for prop in sorted(set(inputs) | set(entry.inputs)):
            if prop in ignored or prop in WRITE_ONLY.get(entry.type, ()):
                continue
            if prop not in inputs:
                if prop not in READ_BACK[entry.type]:  # unset now: back to the provider's default
                    changed.append(prop)
                elif prop in NOT_COMPUTED.get(entry.type, ()) and entry.outputs.get(prop) is not None:
                    changed.append(prop)
                continue  # Optional+Computed and not in the program: no diff
            old = entry.outputs.get(prop) if prop in READ_BACK[entry.type] else entry.inputs.get(prop)
            if _norm(prop, old) != _norm(prop, inputs[prop]):
                changed.append(prop)
        return tuple(changed)

    # ------------------------------------------------------------------ the provider's CRUD

    def _create(self, record: CollectedResource, inputs: dict[str, Any]) -> Entry:
        kind = record.type
        if kind.startswith(RANDOM):
            return Entry(record.urn, kind, str(uuid.uuid4()), inputs, {}, record.delete_before_replace,
                         record.retain_on_delete)
        if kind == SECRET:
            kwargs: dict[str, Any] = {"Name": inputs["name"], "ClientRequestToken": str(uuid.uuid4())}
            if inputs.get("description"):
                kwargs["Description"] = inputs["description"]
            if inputs.get("kmsKeyId"):
                kwargs["KmsKeyId"] = inputs["kmsKeyId"]
            if inputs.get("tags"):
                kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(inputs["tags"].items())]
            rid = str(self.sm.create_secret(**kwargs)["ARN"])
        elif kind == VERSION:
            kwargs = {"SecretId": inputs["secretId"], "ClientRequestToken": str(uuid.uuid4())}
            if "secretString" in inputs:
                kwargs["SecretString"] = inputs["secretString"]
            if "secretStringWo" in inputs:  # resourceSecretVersionCreate: the write-only value, if given
                kwargs["SecretString"] = inputs["secretStringWo"]
            if inputs.get("versionStages"):  # secret_version.go 140-141
                kwargs["VersionStages"] = list(inputs["versionStages"])
            put = self.sm.put_secret_value(**kwargs)
            rid = f"{inputs['secretId']}|{put['VersionId']}"
        else:
            rid = str(self.sm.rotate_secret(**self._rotate_args(inputs))["ARN"])
        self.created.append(rid)
        read = self._read(kind, rid, write_only="secretStringWo" in inputs)
        assert read is not None, f"{record.urn}: created, then not found"
        return Entry(record.urn, kind, rid, inputs, read, record.delete_before_replace, record.retain_on_delete)

    def _import(self, record: CollectedResource, inputs: dict[str, Any]) -> Entry:
        read = self._read(record.type, record.import_id)
        if read is None:
            raise ImportMismatch(f"{record.urn}: resource {record.import_id} does not exist")
        # Only what Read sets can be compared: the rest of the inputs is taken as the program gives it.
        entry = Entry(record.urn, record.type, record.import_id, dict(inputs), read, record.delete_before_replace,
                      record.retain_on_delete)
        differ = [p for p in self._diff(entry, inputs, set(record.ignore_changes)) if p in READ_BACK[record.type]]
        if differ:
            raise ImportMismatch(f"{record.urn}: inputs to import do not match the existing resource: {differ}")
        return entry

    def _replace(self, record: CollectedResource, entry: Entry, inputs: dict[str, Any]) -> None:
        if record.delete_before_replace:
            self._delete(entry)
            del self.state[record.urn]
            self.state[record.urn] = self._create(record, inputs)
        else:
            new = self._create(record, inputs)
            self._delete(entry)
            self.state[record.urn] = new

    def _update(self, entry: Entry, inputs: dict[str, Any]) -> None:
        if entry.type == SECRET:
            old = entry.outputs
            if _norm("", old.get("description")) != _norm("", inputs.get("description")) or \
                    old.get("kmsKeyId") != inputs.get("kmsKeyId"):
                kwargs: dict[str, Any] = {"SecretId": entry.id, "Description": inputs.get("description", "")}
                if inputs.get("kmsKeyId"):
                    kwargs["KmsKeyId"] = inputs["kmsKeyId"]
                self.sm.update_secret(**kwargs)
            tags_old, tags_new = dict(old.get("tags") or {}), dict(inputs.get("tags") or {})
            if gone := sorted(set(tags_old) - set(tags_new)):
                self.sm.untag_resource(SecretId=entry.id, TagKeys=gone)
            if tags_new != {k: v for k, v in tags_old.items() if k in tags_new}:
                self.sm.tag_resource(SecretId=entry.id, Tags=[{"Key": k, "Value": v} for k, v in tags_new.items()])
        elif entry.type == VERSION:
            self._update_stages(entry, set(entry.outputs.get("versionStages") or ()),
                                set(inputs.get("versionStages") or ()))
        elif {"rotationLambdaArn", "rotationRules"} & set(self._diff(entry, inputs, set())):
            self.sm.rotate_secret(**self._rotate_args(inputs))
        entry.inputs = inputs
        read = self._read(entry.type, entry.id, write_only=bool(entry.outputs.get("hasSecretStringWo")))
        assert read is not None, f"{entry.urn}: updated, then not found"
        entry.outputs = read

    def _update_stages(self, entry: Entry, old: set[str], new: set[str]) -> None:
        """secret_version.go 221-293: add each new label (AWSCURRENT taken from its holder), then remove each
        dropped one except AWSCURRENT (and AWSPREVIOUS when AWSCURRENT was just added, which moved it)."""
        secret_id, version_id = entry.id.split("|", 1)
        moved_current = False
        for stage in sorted(new - old):
            kwargs = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": version_id}
            if stage == CURRENT:
                listing = self.sm.list_secret_version_ids(SecretId=secret_id)["Versions"]
                holder = next((v["VersionId"] for v in listing if CURRENT in v.get("VersionStages", [])), "")
                kwargs["RemoveFromVersionId"] = holder
                moved_current = True
            self.sm.update_secret_version_stage(**kwargs)
        for stage in sorted(old - new):
            if stage == CURRENT or (moved_current and stage == PREVIOUS):
                continue
            self.sm.update_secret_version_stage(SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=version_id)

    def _delete(self, entry: Entry) -> None:
        if entry.retain_on_delete:  # step.go DeleteStep.Apply: "Deleting a "drop on delete" is a no-op"
            return
        self.provider_deletes.append(entry.id)
        if entry.type.startswith(RANDOM):
            return  # bytesResource.Delete is empty
        if entry.type == SECRET:
            days = int(entry.inputs.get("recoveryWindowInDays", 30))
            kwargs: dict[str, Any] = {"SecretId": entry.id}
            if days == 0:
                kwargs["ForceDeleteWithoutRecovery"] = True
            else:
                kwargs["RecoveryWindowInDays"] = days
            try:
                self.sm.delete_secret(**kwargs)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
        elif entry.type == VERSION:
            secret_id, version_id = entry.id.split("|", 1)
            for stage in sorted(entry.outputs.get("versionStages") or ()):
                if stage == CURRENT:  # secret_version.go 311-314: AWSCURRENT cannot be removed
                    continue
                try:
                    self.sm.update_secret_version_stage(SecretId=secret_id, VersionStage=stage,
                                                        RemoveFromVersionId=version_id)
                except ClientError as exc:
                    if _gone(exc):  # 325-329
                        return
                    raise
        else:
            self.sm.cancel_rotate_secret(SecretId=entry.outputs.get("secretId", entry.id))

    def _read(self, kind: str, rid: str, *, write_only: bool = False) -> dict[str, Any] | None:
        if kind == VERSION and write_only:
            return self._read_write_only(rid)
        if kind == VERSION:
            secret_id, version_id = rid.split("|", 1)
            try:
                got = self.sm.get_secret_value(SecretId=secret_id, VersionId=version_id)
            except ClientError as exc:
                if _gone(exc):
                    return None
                raise
            return {"secretId": secret_id, "secretString": got.get("SecretString"), "versionId": got["VersionId"],
                    "versionStages": sorted(got.get("VersionStages", [])), "arn": got["ARN"]}
        try:
            described = self.sm.describe_secret(SecretId=rid)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        if described.get("DeletedDate"):
            return None  # findSecretByID: a secret scheduled for deletion is not found
        if kind == SECRET:
            return {"arn": described["ARN"], "name": described["Name"], "description": described.get("Description"),
                    "kmsKeyId": described.get("KmsKeyId"),
                    "tags": {t["Key"]: t["Value"] for t in described.get("Tags", [])}}
        rules = described.get("RotationRules") or {}
        enabled = bool(described.get("RotationEnabled"))
        return {"secretId": rid, "rotationEnabled": enabled,
                "rotationLambdaArn": described.get("RotationLambdaARN", "") if enabled else "",
                "rotationRules": _flatten_rules(rules) if enabled else {}}

    def _read_write_only(self, rid: str) -> dict[str, Any] | None:
        """findSecretVersionEntryByTwoPartKey: the version's entry in ListSecretVersionIds (IncludeDeprecated),
        page by page; no value is read, and secret_string is set to null."""
        secret_id, version_id = rid.split("|", 1)
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
        while True:
            try:
                page = self.sm.list_secret_version_ids(**kwargs)
            except ClientError as exc:
                if _gone(exc):
                    return None
                raise
            for version in page.get("Versions", []):
                if version["VersionId"] == version_id:
                    return {"secretId": secret_id, "secretString": None, "versionId": version_id,
                            "versionStages": sorted(version.get("VersionStages", [])), "arn": page["ARN"],
                            "hasSecretStringWo": True}
            if not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]

    @staticmethod
    def _rotate_args(inputs: Mapping[str, Any]) -> dict[str, Any]:
        rules = inputs.get("rotationRules") or {}
        aws_rules: dict[str, Any] = {}
        if rules.get("scheduleExpression"):
            aws_rules["ScheduleExpression"] = rules["scheduleExpression"]
        elif rules.get("automaticallyAfterDays"):
            aws_rules["AutomaticallyAfterDays"] = int(rules["automaticallyAfterDays"])
        if rules.get("duration"):
            aws_rules["Duration"] = rules["duration"]
        kwargs: dict[str, Any] = {"SecretId": inputs["secretId"], "ClientRequestToken": str(uuid.uuid4()),
                                  "RotateImmediately": bool(inputs.get("rotateImmediately", True)),
                                  "RotationRules": aws_rules}
        if inputs.get("rotationLambdaArn"):
            kwargs["RotationLambdaARN"] = inputs["rotationLambdaArn"]
        return kwargs

    # ------------------------------------------------------------------ what tests ask about

    def version_ids(self) -> dict[str, str]:
        """Secret ARN -> the VersionId of the SecretVersion the state tracks for it."""
        return dict(e.id.split("|", 1) for e in self.state.values() if e.type == VERSION)


def _flatten_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """secret_rotation.go flattenRotationRulesType: a schedule expression, else the days."""
    flat: dict[str, Any] = {}
    if rules.get("ScheduleExpression"):
        flat["scheduleExpression"] = rules["ScheduleExpression"]
    elif rules.get("AutomaticallyAfterDays"):
        flat["automaticallyAfterDays"] = int(rules["AutomaticallyAfterDays"])
    if rules.get("Duration"):
        flat["duration"] = rules["Duration"]
    return flat


def _norm(prop: str, value: Any) -> Any:
    if prop == "versionStages" and value is not None:
        return sorted(set(value))  # a TypeSet
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(k, v) for k, v in value.items() if v not in (None, "", [], {})}
    if value in ("", [], {}):
        return None
    return value


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _gone(exc: ClientError) -> bool:
    """findSecretVersion (secret_version.go 358-365): these errors mean "not found"."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return _code(exc) == "ResourceNotFoundException" or (
        _code(exc) == "InvalidRequestException"
        and ("because it was deleted" in message or "because it was marked for deletion" in message))


Select = Callable[[CollectedResource], bool]
