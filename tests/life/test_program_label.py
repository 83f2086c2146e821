"""Every version the program writes, in every example stack, is created with AWSCURRENT and the program's own
label, within Secrets Manager's label rules, ignores later changes to its labels and is replaced label first."""

from __future__ import annotations

import botocore.session
import pytest

from components.names import PROGRAM_VALUE_LABEL
from tests.life.engine import VERSION
from tests.life.world import program_run

APPS = ("fieldkit", "filot", "ledgerly", "relaybox", "tria-aibpo", "whatsapp-saas")


def test_the_label_fits_secrets_managers_rules() -> None:
    model = botocore.session.get_session().get_service_model("secretsmanager")
    label, labels = model.shape_for("SecretVersionStageType"), model.shape_for("SecretVersionStagesType")
    assert label.metadata["min"] <= len(PROGRAM_VALUE_LABEL) <= label.metadata["max"]
    assert labels.metadata["max"] >= 2
    assert not PROGRAM_VALUE_LABEL.startswith("AWS"), "AWS's own labels are the ones rotation moves"


@pytest.mark.parametrize("stack", ["staging", "production"])
@pytest.mark.parametrize("app", APPS)
def test_every_version_carries_the_label_from_its_creation(app: str, stack: str) -> None:
    versions = [r for r in program_run(app, stack).resources if r.type == VERSION]
    for version in versions:
        assert version.inputs.get("versionStages") == ["AWSCURRENT", PROGRAM_VALUE_LABEL], version.urn
        assert "versionStages" in version.ignore_changes, version.urn
        assert version.delete_before_replace, version.urn
