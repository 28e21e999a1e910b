#!/bin/sh
# azd postprovision hook: build gpu-trainer/Dockerfile into the registry azd just provisioned.
# `az acr build` builds in Azure, so no local Docker is needed; it runs as the signed-in `az` user.
set -eu
cd "$(dirname "$0")/../.."

# The LoRA endpoint's vLLM image, when it is switched on (FORGE_LORA_SERVER_ENABLED); a no-op otherwise.
sh infra/hooks/build-lora-server.sh

if [ ! -f gpu-trainer/Dockerfile ]; then
  echo "forge: gpu-trainer/Dockerfile not found - skipping the trainer image (only provider azureml needs it)."
  exit 0
fi
if [ "${FORGE_SKIP_TRAINER_IMAGE:-false}" = "true" ]; then
  echo "forge: FORGE_SKIP_TRAINER_IMAGE=true - skipping the trainer image."
  exit 0
fi

registry="${AZURE_CONTAINER_REGISTRY_NAME:?not set - run this through azd (azd provision / azd up)}"
image="${FORGE_TRAINER_REPOSITORY:-forge-trainer}:${FORGE_TRAINER_IMAGE_TAG:-latest}"

echo "forge: building $image in registry $registry (several minutes the first time)..."
az acr build --registry "$registry" --image "$image" --file gpu-trainer/Dockerfile gpu-trainer
echo "forge: pushed ${AZURE_CONTAINER_REGISTRY_ENDPOINT:-$registry}/$image"
