"""Entry point the engine runs (`python -m pulumi.policy <engine> policies`): build the pack only.

Constructing PolicyPack starts the analyzer's gRPC server and never returns; the rules live in
the `guardrails` package (importable from tests, imported here from the pack directory).
"""

from guardrails import engine_config, sdk_cache
from guardrails.registry import ALL_POLICIES, PACK_NAME
from pulumi_policy import EnforcementLevel, PolicyPack

sdk_cache.install()  # each resource's properties read once per request, not once per policy
engine_config.install()  # the stack config of ConfigureStack, which newer CLIs send instead of PULUMI_CONFIG

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
