"""The regions the project knows: the partition, which regions have Secrets Manager, which are opt-in.

Both the stack settings and the adopt entries (replica regions) check regions against these; neither
imports the other for it.
"""

from __future__ import annotations

import difflib
import functools

import botocore.session

PARTITION = "aws"
"""Every ARN the project builds starts `arn:aws:`: the standard partition only."""
ENABLED_BY_DEFAULT = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1",
})
"""The regions every account has: AWS enables those introduced before 20 March 2019 by default; every
later region is opt-in, enabled per account first (AWS Account Management guide, "Enable or disable
AWS Regions in your account")."""


@functools.cache
def known_regions() -> frozenset[str]:
    """The partition's regions that have Secrets Manager, from botocore's endpoint data (offline)."""
    return frozenset(botocore.session.get_session().get_available_regions("secretsmanager", PARTITION))


def nearest_region(name: str, known: frozenset[str]) -> str:
    """A did-you-mean for a region AWS does not have."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}"
