"""Mocks for Pulumi's mock runtime that answer like AWS would: realistic ids and ARNs.

Generated values (pulumi-random results) are made at run time from the OS's random source, so
that the preview never holds a fixed or committed value; they are marked secret by the providers'
own schemas and print as `[secret]`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import uuid
from collections.abc import Mapping
from typing import Any

import pulumi

from components.account import ListedSecret
from components.regions import known_regions

_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def _stable(seed: str, length: int) -> str:
    """A deterministic suffix (so ARNs are the same in every run), like the 6 characters AWS appends."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:length])


class AwsMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes with what AWS and pulumi-random would return."""

    def __init__(self, region: str, account_id: str, roles: Mapping[str, str] | None = None,
                 existing: Mapping[str, str] | None = None):
        self.region = region
        self.account_id = account_id
        self.roles = dict(roles or {})
        """Role name -> ARN for the lookups of roles the stack config names (as if each existed as given)."""
        self.existing = dict(existing or {})
        """Secret name -> ARN of the secrets the stack adopts: in the state after their import, they keep it."""
        self.generated: list[str] = []
        """Every value the mocks generated, so that tests can prove none of them is ever printed."""
        self.not_opted_in: tuple[str, ...] = ()
        """Regions DescribeRegions reports as `not-opted-in`: the offline preview knows no account, so none
        (the program still warns about every opt-in region of the stack)."""
        self.listed: tuple[ListedSecret, ...] = ()
        """What ListSecrets (with planned deletions) holds under the stack's prefix: offline, nothing."""
        self.key_states: dict[str, str] = {}
        """Key id -> KeyState for DescribeKey (components/account.py asks only about listed secrets' keys)."""

    def _arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{self.account_id}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region") or self.region
        name = args.name
        kind = args.typ
        state: dict[str, Any] = dict(inputs)
        if kind == "aws:kms/key:Key":
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{name}"))
            state.update(keyId=key_id, arn=self._arn("kms", region, f"key/{key_id}"))
            return key_id, state
        if kind == "aws:kms/alias:Alias":
            alias = inputs.get("name", f"alias/{name}")
            state.update(arn=self._arn("kms", region, alias), targetKeyArn=self._arn("kms", region, "key/-"))
            return alias, state
        if kind == "aws:secretsmanager/secret:Secret":
            secret_name = inputs.get("name", name)
            arn = self._arn("secretsmanager", region, f"secret:{secret_name}-{_stable(secret_name, 6)}")
            # An import (`import_`, the request's importId) or a secret adopted earlier: the existing ARN stays.
            arn = args.resource_id or self.existing.get(secret_name) or arn
            state.update(arn=arn)
            return arn, state
        if kind == "aws:secretsmanager/secretVersion:SecretVersion":
            version = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
            state.update(versionId=version, arn=inputs.get("secretId"))
            return f"{inputs.get('secretId')}|{version}", state
        if kind == "random:index/randomBytes:RandomBytes":
            raw = secrets.token_bytes(int(inputs.get("length", 32)))
            state.update(hex=raw.hex(), base64=base64.b64encode(raw).decode())
            urlsafe = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            self.generated += [state["hex"], state["base64"], urlsafe]
            return name, state
        if kind == "random:index/randomPassword:RandomPassword":
            alphabet = inputs.get("overrideSpecial") or _SUFFIX_ALPHABET
            # One read of the OS's random source per value, not one per character (a stand-in that is
            # never used needs no uniform draw, only to be unpredictable and never committed).
            raw = secrets.token_bytes(int(inputs.get("length", 32)))
            value = "".join(alphabet[b % len(alphabet)] for b in raw)
            state.update(result=value, bcryptHash="-")
            self.generated.append(value)
            return name, state
        if kind == "random:index/randomUuid:RandomUuid":
            state.update(result=str(uuid.uuid4()))
            self.generated.append(state["result"])
            return name, state
        if kind.startswith("aws:iam/"):
            kind = kind.split(":")[-1].lower()
            resource_name = inputs.get("name", name)
            state.update(arn=f"arn:aws:iam::{self.account_id}:{kind}/{resource_name}")
            return resource_name, state
        if kind == "aws:lambda/function:Function":
            fn = inputs.get("name", name)
            arn = self._arn("lambda", region, f"function:{fn}")
            state.update(arn=arn, qualifiedArn=f"{arn}:$LATEST", invokeArn=arn, version="$LATEST")
            return fn, state
        if kind == "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name", name)
            state.update(arn=self._arn("logs", region, f"log-group:{group}"))
            return group, state
        if kind == "aws:sns/topic:Topic":
            topic = inputs.get("name", name)
            state.update(arn=self._arn("sns", region, topic))
            return topic, state
        if kind == "aws:sqs/queue:Queue":
            queue = inputs.get("name", name)
            url = f"https://sqs.{region}.amazonaws.com/{self.account_id}/{queue}"
            state.update(arn=self._arn("sqs", region, queue), url=url)
            return url, state
        if kind == "aws:cloudwatch/eventRule:EventRule":
            rule = inputs.get("name", name)
            state.update(arn=self._arn("events", region, f"rule/{rule}"))
            return rule, state
        if kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            alarm = inputs.get("name", name)
            state.update(arn=self._arn("cloudwatch", region, f"alarm:{alarm}"))
            return alarm, state
        state.setdefault("name", name)
        service = kind.split(":")[1].split("/")[0]
        state.setdefault("arn", self._arn(service, region, f"{kind.split(':')[-1].lower()}/{name}"))
        return f"{name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:root",
                    "userId": self.account_id, "id": self.account_id}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if args.token == "aws:iam/getRole:getRole":
            name = str(args.args["name"])
            arn = self.roles.get(name, f"arn:aws:iam::{self.account_id}:role/{name}")
            return {"id": name, "name": name, "arn": arn, "path": "/" + "".join(
                f"{part}/" for part in arn.split(":role/", 1)[1].split("/")[:-1])}, []
        if args.token == "aws:index/getRegions:getRegions":
            wanted = [f for f in args.args.get("filters") or [] if f.get("name") == "opt-in-status"]
            names = sorted(self.not_opted_in) if wanted and list(wanted[0].get("values", [])) == ["not-opted-in"] \
                else sorted(known_regions())
            return {"id": "aws", "names": names, "allRegions": bool(args.args.get("allRegions"))}, []
        raise NotImplementedError(f"the offline preview has no mock for the invoke {args.token}")

    # The account lookups the program makes outside the provider (components/account.py, AccountLookup).

    def secrets_under(self, prefix: str) -> list[ListedSecret]:
        return [s for s in self.listed if s.name.startswith(prefix)]

    def key_state(self, key_id: str) -> str | None:
        return self.key_states.get(key_id)


ROLE_ARN = re.compile(r"^arn:aws:iam::[0-9]{12}:role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})$")


def configured_roles(principals: str | None) -> dict[str, str]:
    """Role name -> ARN for every full role ARN in a `principals` config value (JSON)."""
    found: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str) and (match := ROLE_ARN.fullmatch(value)):
            found[match.group("name")] = value
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    try:
        walk(json.loads(principals) if principals else None)
    except json.JSONDecodeError:
        pass  # the program reports the malformed value itself
    return found


def adopted_arns(adopt: str | None) -> dict[str, str]:
    """Existing name -> ARN for every entry of a `secrets-platform:adopt` config value (JSON)."""
    try:
        entries = json.loads(adopt) if adopt else {}
    except json.JSONDecodeError:
        return {}  # the program reports the malformed value itself
    if not isinstance(entries, dict):
        return {}
    return {str(e["name"]): str(e["arn"]) for e in entries.values()
            if isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("arn"), str)}
