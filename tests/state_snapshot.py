"""What the engine would record for a stack: run one checkout's program under the mock runtime, as a script.

    python tests/state_snapshot.py <code tree> <project dir> <request.json> <result.json>

Run in a process of its own so that two checkouts of `components/` (the program as it was and as it is)
never share imported modules. The request lists the stacks (`app`, `stack`, `config`:
a stack file, or null to complete the example's committed file: every value it leaves to set is set,
secret ones as `secure:`) and a key made by the test, from which come the canary each `secure:` key holds
instead of the preview's random stand-in (`canary`) and the generated values. pulumi-random keeps a result
in the state under its URN, so a value the mocks generate is derived from that key and the resource's type
and name: the same resource gives the same value in both checkouts, as in a real stack. The result holds,
per stack, every registered resource (type, URN, inputs in the engine's wire form, `ignore_changes`), what
the mocks returned as its outputs, and the stack outputs. Nothing of it is printed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml


def canary(key: bytes, config_key: str) -> str:
    """The value a `secure:` key holds in both runs: made from the run's key, so never a committed value."""
    return "cnry" + hmac.new(key, config_key.encode(), hashlib.sha256).hexdigest()[:40]


def _derived(key: bytes, typ: str, name: str, length: int) -> bytes:
    return hashlib.shake_256(hmac.new(key, f"{typ}/{name}".encode(), hashlib.sha256).digest()).digest(length)


def _kept(key: bytes, typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A random resource's outputs as the state keeps them between deployments."""
    if typ == "random:index/randomBytes:RandomBytes":
        raw = _derived(key, typ, name, int(inputs.get("length", 32)))
        return {**state, "hex": raw.hex(), "base64": base64.b64encode(raw).decode()}
    if typ == "random:index/randomPassword:RandomPassword":
        alphabet = inputs.get("overrideSpecial") or "abcdefghijklmnopqrstuvwxyz0123456789"
        raw = _derived(key, typ, name, int(inputs.get("length", 32)))
        return {**state, "result": "".join(alphabet[b % len(alphabet)] for b in raw)}
    if typ == "random:index/randomUuid:RandomUuid":
        return {**state, "result": str(uuid.UUID(bytes=_derived(key, typ, name, 16), version=4))}
    return state


def main(code_tree: str, project_dir: str, request_file: str, result_file: str) -> None:
    sys.path.insert(0, code_tree)
    import pulumi

    from preview import mocks as mocks_module
    from preview.model import CollectedResource
    from preview.runtime import run_program
    from preview.stackconfig import load_stack_config

    request = json.loads(Path(request_file).read_text())
    key = bytes.fromhex(request["key"])
    outputs: dict[str, dict[str, Any]] = {}
    original = mocks_module.AwsMocks.new_resource

    def new_resource(self: Any, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = original(self, args)
        if args.typ.startswith("random:"):
            state = _kept(key, args.typ, args.name, dict(args.inputs), state)
        outputs[f"{args.typ}::{args.name}"] = state
        return resource_id, state

    mocks_module.AwsMocks.new_resource = new_resource  # type: ignore[method-assign]
    project = Path(project_dir)
    program = str(Path(code_tree) / "__main__.py")

    try:  # how this code tree's preview runs the program leniently (newer trees) or not (older ones)
        from components.values import offline_stand_ins
    except ImportError:
        offline_stand_ins = None

    def run(stack: str, config: Path, app: str) -> tuple[Any, Any]:
        loaded = load_stack_config(project, stack, config)
        for secret_key in loaded.secret_keys:
            loaded.values[secret_key] = canary(key, secret_key)
        # Settings a newer release requires that the baseline's files lack (how each service reads its
        # secrets: production refuses a consumer it knows nothing of) come from this tree's own example file.
        own = Path(code_tree) / "examples" / app / f"Pulumi.{stack}.yaml"
        consumption = f"{loaded.project}:consumption"
        if consumption not in loaded.values and own.is_file():
            found = (yaml.safe_load(own.read_text()) or {}).get("config", {}).get(consumption)
            if found is not None:
                loaded.values[consumption] = json.dumps(found)
        outputs.clear()
        if offline_stand_ins is None:
            loaded.values[f"{loaded.project}:allowMissingValues"] = "true"
            return loaded, run_program(loaded, project, program)
        with offline_stand_ins(loaded.secret_keys):
            return loaded, run_program(loaded, project, program)

    def record(resource: CollectedResource) -> dict[str, Any]:
        return {"urn": resource.urn, "type": resource.type, "name": resource.name, "inputs": resource.inputs,
                "ignore_changes": list(resource.ignore_changes),
                "outputs": outputs.get(f"{resource.type}::{resource.name}")}

    results = []
    for item in request["stacks"]:
        app, stack = item["app"], item["stack"]
        config = Path(item["config"]) if item.get("config") else None
        if config is None:
            committed = project / "examples" / app / f"Pulumi.{stack}.yaml"
            _, first = run(stack, committed, app)
            document = yaml.safe_load(committed.read_text())
            for gap in first.outputs["actionRequired"]:
                plain = "--secret" not in gap["command"]
                document["config"][f"secrets-platform:{gap['configKey']}"] = (
                    "stand-in.example.internal" if plain else {"secure": "v1:" + "A" * 44})
            config = Path(request["directory"]) / f"{app}.Pulumi.{stack}.yaml"
            config.write_text(yaml.safe_dump(document, sort_keys=False))
        loaded, program_run = run(stack, config, app)
        results.append({
            "app": app, "stack": stack, "config": str(config), "secret_keys": loaded.secret_keys,
            "resources": [record(r) for r in program_run.resources],
            "outputs": json.loads(json.dumps(program_run.outputs, default=str)),
        })
    Path(result_file).write_text(json.dumps(results, default=repr))


if __name__ == "__main__":
    main(*sys.argv[1:5])
