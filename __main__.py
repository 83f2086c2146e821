"""The secrets platform: one environment of the application's secrets, from the catalog."""

from pathlib import Path

import pulumi

from components.catalog import load_catalog
from components.environment import SecretsEnvironment, SecretsEnvironmentArgs, shared_with_output
from components.names import environment_component
from components.settings import load_settings

settings = load_settings()
catalog = load_catalog(Path(settings.catalog))
environment = SecretsEnvironment(
    environment_component(catalog.app, settings.environment), SecretsEnvironmentArgs(catalog=catalog, settings=settings)
)

pulumi.export("secretArns", environment.secret_arns())
pulumi.export("envVars", environment.env_vars())
pulumi.export("ecsSecrets", environment.ecs_secrets())
pulumi.export("ecsSecretsByService", environment.ecs_secrets_by_service())
pulumi.export("envExample", environment.env_example())
pulumi.export("publicKeys", environment.public_keys())
pulumi.export("kmsKeyArn", environment.key.arn)
pulumi.export("policyArns", environment.policy_arns())
pulumi.export("rotationAlertsTopicArn", environment.alerts.topic.arn if environment.alerts else None)
pulumi.export("accessAlertsTopicArn", environment.access_alerts.topic_arn if environment.access_alerts else None)
pulumi.export("actionRequired", [
    {"secret": gap.secret, "key": gap.key, "configKey": gap.config_key, "required": gap.required,
     "command": gap.command.replace("<stack>", settings.stack)}
    for gap in environment.missing
])
pulumi.export("pendingSteps", [{"what": step.what, "command": step.command} for step in environment.pending_steps])
pulumi.export("deployChecks", environment.deploy_checks)
# Generated server credentials and who installs each on its server (preview: "Action required").
pulumi.export("firstInstalls", [
    {"secret": i.secret, "strategy": i.strategy, "master": i.master, "status": i.status, "action": i.action}
    for i in environment.first_installs
])
# Per account and role this stack shares secrets with: the identity policy that account attaches.
pulumi.export("sharedWith", shared_with_output(environment))
