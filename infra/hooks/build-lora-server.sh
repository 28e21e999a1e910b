#!/bin/sh
# azd postprovision (run by build-trainer.sh): with FORGE_LORA_SERVER_ENABLED=true and no FORGE_LORA_SERVER_IMAGE,
# build lora-server/Dockerfile into the registry azd provisioned and deploy infra/app/lora-endpoint.bicep with it
# (main.bicep deploys it itself when an image is named). The tag is the hash of lora-server/, so an unchanged server
# is neither rebuilt nor redeployed. Runs as the signed-in `az` user; idempotent.
set -eu
cd "$(dirname "$0")/../.."

if [ "${FORGE_LORA_SERVER_ENABLED:-false}" != "true" ]; then
  exit 0
fi
if [ -n "${FORGE_LORA_SERVER_IMAGE:-}" ]; then
  echo "forge: the LoRA endpoint runs ${FORGE_LORA_SERVER_IMAGE} (deployed with the infrastructure)."
  exit 0
fi

registry="${AZURE_CONTAINER_REGISTRY_NAME:?not set - run this through azd (azd provision / azd up)}"
tag="$(cat lora-server/Dockerfile lora-server/forge_adapters.py | sha256sum | cut -c1-12)"
image="forge-vllm:$tag"
if az acr repository show --name "$registry" --image "$image" --output none 2>/dev/null; then
  echo "forge: $image is in $registry already."
else
  echo "forge: building $image in registry $registry (the vLLM base image is large: many minutes the first time)..."
  az acr build --registry "$registry" --image "$image" --file lora-server/Dockerfile lora-server
fi

echo "forge: deploying the LoRA endpoint ${FORGE_LORA_ENDPOINT_NAME:?not set - run azd provision first} on ${FORGE_LORA_INSTANCE_TYPE:?not set} (GPU; it bills while it runs)..."
az deployment group create \
  --resource-group "${AZURE_RESOURCE_GROUP:?not set - run azd provision first}" \
  --name forge-lora-endpoint \
  --template-file infra/app/lora-endpoint.bicep \
  --parameters location="${AZURE_LOCATION:?not set}" workspaceName="${FORGE_AZUREML_WORKSPACE:?not set}" \
               endpointName="$FORGE_LORA_ENDPOINT_NAME" image="${AZURE_CONTAINER_REGISTRY_ENDPOINT:?not set}/$image" \
               baseModel="${FORGE_LORA_BASE_MODEL:?not set}" instanceType="$FORGE_LORA_INSTANCE_TYPE" \
               storageAccountName="${AZURE_STORAGE_ACCOUNT_NAME:?not set}" registryName="$registry" \
               tags="{\"azd-env-name\": \"${AZURE_ENV_NAME:-}\"}" \
  --output none
echo "forge: LoRA students now load into https://$FORGE_LORA_ENDPOINT_NAME.$AZURE_LOCATION.inference.ml.azure.com"
