"""Azure OpenAI serves a fine-tuned model only through a deployment: create one per student, idempotent by name.

The control plane is `azure-mgmt-cognitiveservices` (`deployments.get` / `begin_create_or_update` on the account),
called with the app's identity; the role that runs fine-tuning (Cognitive Services OpenAI Contributor) may deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError

from forge.domain.errors import ConfigError
from forge.providers.training import ProviderUnavailable

ACCOUNT_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                        r"Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)/?$", re.IGNORECASE)
MAX_NAME = 64
READY, DEPLOYING, FAILED = "ready", "deploying", "failed"


@dataclass(frozen=True)
class Deployment:
    state: str  # ready, deploying or failed
    error: str | None = None


class AzureDeployments:
    """Deployments of fine-tuned models on one Azure OpenAI account."""

    def __init__(self, resource_id: str, *, sku: str = "Standard", capacity: int = 1, operations: Any = None,
                 operations_factory: Callable[[str], Any] | None = None):
        match = ACCOUNT_ID.match(resource_id or "")
        if not match:
            raise ConfigError(
                "FORGE_AZURE_OPENAI_DEPLOY=true needs FORGE_AZURE_OPENAI_RESOURCE_ID, the account's ARM id "
                "(/subscriptions/…/resourceGroups/…/providers/Microsoft.CognitiveServices/accounts/NAME); azd sets it."
            )
        self.subscription, self.resource_group, self.account = match["sub"], match["rg"], match["account"]
        self.sku, self.capacity = sku, capacity
        self._operations = operations
        self._factory = operations_factory or _management_deployments

    @classmethod
    def from_settings(cls, settings: Any) -> "AzureDeployments":
        return cls(settings.azure_openai_resource_id or "", sku=settings.azure_openai_deployment_sku,
                   capacity=settings.azure_openai_deployment_capacity)

    @property
    def operations(self) -> Any:
        if self._operations is None:
            self._operations = self._factory(self.subscription)
        return self._operations

    def ensure(self, name: str, model: str) -> Deployment:
        """Where `model`'s deployment `name` stands; starts creating it (without waiting) when there is none."""
        try:
            try:
                found = self.operations.get(self.resource_group, self.account, name)
            except ResourceNotFoundError:
                self.operations.begin_create_or_update(self.resource_group, self.account, name, self._spec(model))
                return Deployment(DEPLOYING)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ProviderUnavailable(f"Cannot reach Azure to deploy {model} ({type(exc).__name__}); Forge retries.") \
                from None
        except HttpResponseError as exc:
            if exc.status_code in (408, 409, 429) or (exc.status_code or 500) >= 500:
                raise ProviderUnavailable(f"Azure could not deploy {model} now (HTTP {exc.status_code}); Forge retries.") \
                    from None
            return Deployment(FAILED, f"Azure refused the deployment {name}: {exc.message or exc}")
        state = str(getattr(found.properties, "provisioning_state", "") or "")
        if state.lower() == "succeeded":
            return Deployment(READY)
        if state.lower() in ("failed", "canceled", "disabled", "deleting"):
            return Deployment(FAILED, f"deployment {name} is {state}")
        return Deployment(DEPLOYING)

    def _spec(self, model: str) -> Any:
        from azure.mgmt.cognitiveservices.models import Deployment as Spec
        from azure.mgmt.cognitiveservices.models import DeploymentModel, DeploymentProperties, Sku

        # A fine-tuned model deploys as format OpenAI, its `ft:`/`.ft-` name, version "1".
        return Spec(sku=Sku(name=self.sku, capacity=self.capacity),
                    properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name=model, version="1")))


def deployment_name(provider_job_id: str) -> str:
    """One deployment per fine-tuning job: a name Azure accepts, derived from the job id so retries find it."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"forge-{provider_job_id}")[:MAX_NAME]


def _management_deployments(subscription: str) -> Any:
    try:
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    except ImportError:
        raise ConfigError("Deploying fine-tuned models needs azure-mgmt-cognitiveservices: "
                          "pip install 'forge[azure]', or set FORGE_AZURE_OPENAI_DEPLOY=false.") from None
    from azure.identity import DefaultAzureCredential

    return CognitiveServicesManagementClient(DefaultAzureCredential(), subscription).deployments
