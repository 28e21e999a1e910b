#!/bin/sh
# azd postdeploy hook: subscribe the eventgrid_training function to Azure ML RunStatusChanged events.
# Event Grid validates that the function exists, so this can only run after `azd deploy`; it deploys the
# same Bicep module main.bicep uses, with the subscription switched on. Idempotent: safe on every deploy.
set -eu
cd "$(dirname "$0")/../.."

group="${AZURE_RESOURCE_GROUP:?not set - run this through azd (azd deploy / azd up)}"
app="${AZURE_FUNCTION_APP_NAME:?not set - run azd provision first}"
workspace="${FORGE_AZUREML_WORKSPACE:?not set - run azd provision first}"
topic="${EVENTGRID_TOPIC_NAME:?not set - run azd provision first}"
location="${AZURE_LOCATION:?not set - run azd provision first}"
tags="{\"azd-env-name\": \"${AZURE_ENV_NAME:-}\"}"

# Right after a deploy the host may still be indexing functions; give it a few tries.
attempt=1
until az deployment group create \
    --resource-group "$group" \
    --name forge-training-events \
    --template-file infra/app/training-events.bicep \
    --parameters location="$location" topicName="$topic" workspaceName="$workspace" \
                 functionAppName="$app" subscriptionEnabled=true tags="$tags" \
    --output none; do
  if [ "$attempt" -ge 5 ]; then
    echo "forge: could not subscribe $app/eventgrid_training to training events; jobs still finish by polling." >&2
    echo "forge: check that function_app.py defines eventgrid_training, then run: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "forge: eventgrid_training not reachable yet (attempt $attempt); retrying in 30 s..."
  attempt=$((attempt + 1))
  sleep 30
done
echo "forge: Azure ML RunStatusChanged events now go to $app/eventgrid_training"
