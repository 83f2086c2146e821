"""The stack config reaches the pack on both paths the CLI starts a Python pack by.

Newer CLIs start the pack through the language host's RunPlugin and leave PULUMI_CONFIG unset: pulumi/pulumi's
analyzer test language host (tests/testdata/.../language host for an analyzer, `RunPlugin`) fails the run with
"expected PULUMI_CONFIG not to be set". The config then arrives in the Analyzer's ConfigureStack call
(proto `AnalyzerStackConfigureRequest.config`, a map of strings), which pulumi-policy 1.21 receives but keeps
only the tags of (`_PolicyAnalyzerServicer.ConfigureStack`). The old shim puts it in PULUMI_CONFIG.
"""

from __future__ import annotations

import policy_fixtures as f

from preview import policy_check as pc


def _findings(**kwargs: object) -> list[tuple[str, str]]:
    found = pc.evaluate(f.base_stack(), project=f.PROJECT, stack=f.STACK, **kwargs)  # type: ignore[arg-type]
    return sorted((v.policy, v.urn or "") for v in found)


def test_the_config_of_configure_stack_and_of_the_environment_give_the_same_findings() -> None:
    # The secret-value-source rule accepts a secret string only when it equals a config value: the compliant
    # stack's API token comes from the stack config, so without the config the rule must fire.
    without = _findings()
    assert any(p == "secret-value-source" for p, _ in without), without
    through_configure_stack = _findings(stack_config=f.STACK_CONFIG)
    through_environment = _findings(stack_config=f.STACK_CONFIG, legacy_config=True)
    assert through_configure_stack == through_environment
    assert not any(p == "secret-value-source" for p, _ in through_configure_stack)


def test_without_configure_stack_the_new_path_sees_no_config() -> None:
    """What the pack saw before it kept ConfigureStack's config: PULUMI_CONFIG unset, the config ignored."""
    env = pc._pack_env(f.PROJECT, f.STACK, f.STACK_CONFIG, "organization")
    assert "PULUMI_CONFIG" not in env
    pack = pc._Pack(pc.DEFAULT_PACK_DIR, env)
    try:
        ignored = sorted((v.policy, v.urn or "") for v in pc.drive(pack.stub, f.base_stack()))
    finally:
        pack.close()
    assert any(p == "secret-value-source" for p, _ in ignored)
