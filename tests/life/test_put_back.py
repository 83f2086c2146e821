"""A rotated value is never put back: deploy, rotate past AWS's 100 kept versions, let AWS remove the old ones,
refresh, deploy again.

Without a label of its own (`before`: the program as it was), the first version ends unlabelled once rotations
have moved AWSCURRENT and AWSPREVIOUS on; Secrets Manager removes it (more than 100 versions, older than 24 h);
`pulumi refresh` drops it from the state (the provider's Read: NotFound -> removed); the next `pulumi up`
creates it again, and PutSecretValue without VersionStages makes the first value AWSCURRENT again. With the
label (`labelled`), the version is never removed, nothing is dropped, and the up changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.names import PROGRAM_VALUE_LABEL
from tests.life.engine import VERSION
from tests.life.world import Life

ROTATIONS = 101
"""The first version plus 101 rotations: 102 versions, two above the 100 AWS keeps."""
APP = "whatsapp-saas"
"""Its staging stack has two token-rotated secrets with a first value from the program (admin-token,
meta-verify-token)."""


def _rotate_past_the_quota(life: Life) -> None:
    for _ in range(ROTATIONS):
        life.clock.advance(3600)  # hourly: the schedule's fastest rate is every 4 hours; the clock only orders
        for arn in life.secret_arns():
            life.rotate(arn)
    life.clock.advance(24 * 3600)  # the newest unlabelled versions pass 24 hours too


@pytest.mark.parametrize("variant", ["labelled", "before"])
def test_a_rotated_value_is_never_put_back(life: Callable[..., Life], variant: str) -> None:
    stack = life(APP, variant)
    created = stack.engine.up(stack.resources)
    assert sorted(s.op for s in created) == ["create"] * 6, created
    arns = stack.secret_arns()
    first = {arn: stack.value_of(arn, version) for arn, version in stack.engine.version_ids().items()}
    assert set(first) == set(arns)

    _rotate_past_the_quota(stack)
    rotated = {arn: stack.current(arn) for arn in arns}
    assert all(rotated[a] != first[a] for a in arns), "every secret was rotated"
    assert stack.engine.up(stack.resources, dry_run=True) == [], "an up after rotations changes nothing"

    removed = stack.aws.remove_old_versions()
    dropped = stack.engine.refresh()
    steps = stack.engine.up(stack.resources)
    put_back = sum(stack.current(a) == first[a] for a in arns)
    kept = sum(stack.current(a) == rotated[a] for a in arns)

    if variant == "labelled":
        assert removed == 2 * len(arns), "AWS removed the two oldest unlabelled versions of each secret"
        assert dropped == [] and steps == [], (dropped, steps)
        assert put_back == 0 and kept == len(arns)
        for arn, version in stack.engine.version_ids().items():
            assert stack.labelled(arn) == [version], "the program's version keeps its label, alone"
    else:
        # Today's figure on this emulator: both first versions removed, dropped, written back as AWSCURRENT.
        assert [s.op for s in dropped] == ["drop"] * len(arns)
        assert sorted((s.op, s.urn.rsplit("::", 1)[-1]) for s in steps) == [
            ("create", f"{APP}-staging-admin-token-value"), ("create", f"{APP}-staging-meta-verify-token-value")]
        assert put_back == len(arns) and kept == 0


def test_the_label_survives_rotation_ops_rotate_and_ops_rollback(life: Callable[..., Life]) -> None:
    """finishSecret moves AWSCURRENT only, `ops rotate` is a RotateSecret and `ops rollback` moves AWSCURRENT back to
    AWSPREVIOUS: none of them moves or removes the program's label, even when the labelled version is the one
    AWSCURRENT goes back to or leaves."""
    import io

    from ops.secrets import rollback, rotate
    from ops.stack import load_stack
    from tests.conftest import REPO

    stack = life(APP)
    stack.engine.up(stack.resources)
    ops_stack = load_stack("staging", REPO, REPO / "examples" / APP / "Pulumi.staging.yaml")
    (arn, first_version), *_ = sorted(stack.engine.version_ids().items())
    name = stack.sm.describe_secret(SecretId=arn)["Name"]
    out, err = io.StringIO(), io.StringIO()
    history = []
    for action in ("rotate", "rollback", "rotate", "scheduled", "rotate", "rollback", "rollback"):
        if action == "rotate":
            rotate(ops_stack, stack.sm, name, out)
        elif action == "scheduled":
            stack.rotate(arn)
        else:
            rollback(ops_stack, stack.sm, name, out, err, yes=True, confirm=lambda _: None)
        history.append(stack.labelled(arn))
    assert history == [[first_version]] * len(history)
    assert PROGRAM_VALUE_LABEL in stack.stages(arn)[first_version]
    assert stack.engine.up(stack.resources, dry_run=True) == []
    tracked = [e for e in stack.engine.state.values() if e.type == VERSION and e.id.startswith(arn)]
    assert len(tracked) == 1
