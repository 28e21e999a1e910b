// Forge on Azure: `azd up` provisions this, deploys function_app.py to it, then runs the hooks in azure.yaml.
// Everything authenticates with the Function App's system-assigned identity; no key or connection string
// with a secret is created, read (listKeys) or stored anywhere.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; a hash of it names every resource.')
param environmentName string

@minLength(1)
@description('Region for everything except, optionally, Azure OpenAI. Must offer Flex Consumption.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person running azd; gets blob and table data roles so the forge CLI can create the first API key. Empty: none.')
param principalId string = ''

// --- Forge behaviour (forge.config.Settings; see docs/deploy.md) ---------------------------------------
param forgeEnabled bool = true
param teacherModel string = 'gpt-4.1'
param studentBaseModel string = 'gpt-4.1-mini-2025-04-14'
@minValue(1)
param triggerThreshold int = 500
@description('Functions NCRONTAB, six fields (second minute hour day month day-of-week), UTC.')
param scheduleCron string = '0 0 2 * * *'
@description('0-100; Bicep has no float type, so this is passed through as text.')
param minScore string = '90'
@description('USD per million tokens (input, output) for the teacher and a hosted student; as text, like minScore.')
param teacherPriceInput string = '2.00'
param teacherPriceOutput string = '8.00'
param studentPriceInput string = '0.80'
param studentPriceOutput string = '3.20'
@allowed([
  'local'
  'azure-openai'
  'openai'
  'azureml'
])
param provider string = 'azure-openai'

@description('Comma-separated training providers an API caller may ask for; empty: the provider above alone.')
param allowedProviders string = ''

// --- Optional pieces ---------------------------------------------------------------------------------
@description('Create an Azure OpenAI account (hosted fine-tuning and the teacher).')
param openAiEnabled bool = true
@description('Azure OpenAI region; fine-tuning is offered in fewer regions than inference. Empty: `location`.')
param openAiLocation string = ''
@description('Tokens-per-minute capacity (thousands) of a teacher deployment named after teacherModel; 0 creates none.')
param teacherCapacity int = 0
@description('Version of the teacher model to deploy when teacherCapacity > 0.')
param teacherModelVersion string = '2025-04-14'

@description('GPU VM size for the trainer cluster; needs quota for its family in the region.')
param gpuVmSize string = 'Standard_NC4as_T4_v3'
@minValue(1)
param gpuMaxNodes int = 1
@allowed([
  'Dedicated'
  'LowPriority'
])
@description('LowPriority is cheaper and can be preempted; the trainer resumes from its last checkpoint.')
param gpuPriority string = 'Dedicated'
@description('Tag of the forge-trainer image that the postprovision hook pushes and the app submits.')
param trainerImageTag string = 'latest'

@description('Create a code session pool (Azure Container Apps dynamic sessions) where model-written benchmark code runs. Off: evaluations of domains with python_tests stop with this fix named, since the Function App has no jail of its own.')
param enableCodeSessions bool = false

@description('Set by the postdeploy hook once eventgrid_training exists; Event Grid refuses to subscribe a function that is not deployed yet.')
param trainingEventsEnabled bool = false

@description('Serve LoRA students in Azure: an Azure ML managed online endpoint running vLLM, students loaded as adapters by name (docs/serving.md). Off by default: its GPU instance runs around the clock (costs in app/lora-endpoint.bicep).')
param loraServerEnabled bool = false
@description('The vLLM image to run; empty: lora-server/Dockerfile, built into the registry by the postprovision hook, which then deploys the endpoint.')
param loraServerImage string = ''
@description('Hugging Face id of the base model the azureml provider trains students on; the endpoint serves it.')
param loraBaseModel string = 'Qwen/Qwen2.5-0.5B-Instruct'
@description('GPU instance of the LoRA endpoint: Standard_NC4as_T4_v3 (1 T4, 16 GB, ~0.53 USD/h) fits bases up to ~3B in fp16; Standard_NC24ads_A100_v4 (1 A100, 80 GB, ~3.67 USD/h) larger ones.')
param loraInstanceType string = 'Standard_NC4as_T4_v3'

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
// Flex Consumption reads the deployed package from this container, with the app's identity.
var deploymentContainerName = 'app-package-${take(resourceToken, 12)}'
var gpuClusterName = 'gpu-cluster'
var loraEndpointName = 'forge-lora-${take(resourceToken, 10)}'
var trainerRepository = 'forge-trainer'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module monitoring './core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  }
}

module storage './core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    containers: [deploymentContainerName]
  }
}

module openAi './core/ai/openai.bicep' = if (openAiEnabled) {
  name: 'openai'
  scope: rg
  params: {
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    name: '${abbrs.cognitiveServicesOpenAI}${resourceToken}'
    teacherModel: teacherModel
    teacherModelVersion: teacherModelVersion
    teacherCapacity: teacherCapacity
  }
}

module ml './core/ml/workspace.bicep' = {
  name: 'ml'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: '${abbrs.machineLearningServicesWorkspaces}${resourceToken}'
    keyVaultName: '${abbrs.keyVaultVaults}${resourceToken}'
    registryName: '${abbrs.containerRegistryRegistries}${resourceToken}'
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    clusterName: gpuClusterName
    vmSize: gpuVmSize
    maxNodes: gpuMaxNodes
    priority: gpuPriority
  }
}

// With an image named here, the endpoint is deployed now; without, the postprovision hook deploys the same module
// once it has built lora-server/Dockerfile into the registry.
module loraEndpoint './app/lora-endpoint.bicep' = if (loraServerEnabled && !empty(loraServerImage)) {
  name: 'lora-endpoint'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: ml.outputs.workspaceName
    endpointName: loraEndpointName
    image: loraServerImage
    baseModel: loraBaseModel
    instanceType: loraInstanceType
    storageAccountName: storage.outputs.name
    registryName: ml.outputs.registryName
  }
}

module sessions './app/sessions.bicep' = if (enableCodeSessions) {
  name: 'sessions'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.appSessionPools}${resourceToken}'
  }
}

module notifications './app/notifications.bicep' = {
  name: 'notifications'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.eventGridTopics}notify-${resourceToken}'
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    // Everything forge.config.Settings reads in Azure. Storage is reached by URL with the app's identity,
    // so FORGE_STORAGE_CONNECTION stays unset; tests/unit/test_infra.py keeps this list complete.
    appSettings: {
      FORGE_ENABLED: forgeEnabled ? 'true' : 'false'
      FORGE_TEACHER_MODEL: teacherModel
      FORGE_STUDENT_BASE_MODEL: studentBaseModel
      FORGE_TRIGGER_THRESHOLD: string(triggerThreshold)
      FORGE_SCHEDULE_CRON: scheduleCron
      FORGE_MIN_SCORE: minScore
      FORGE_PROVIDER: provider
      FORGE_ALLOWED_PROVIDERS: empty(allowedProviders) ? provider : allowedProviders
      // The Flex Consumption file system is read-only outside /tmp.
      FORGE_HOME: '/tmp/forge'
      FORGE_STORAGE_BLOB_URL: storage.outputs.blobEndpoint
      FORGE_STORAGE_TABLE_URL: storage.outputs.tableEndpoint
      FORGE_STORAGE_QUEUE_URL: storage.outputs.queueEndpoint
      FORGE_AZURE_OPENAI_ENDPOINT: openAiEnabled ? openAi.outputs.endpoint : ''
      // Azure serves a fine-tuned model only through a deployment: the app deploys each student it trains
      // (Cognitive Services OpenAI Contributor, granted in rbac.bicep, covers deployments/write).
      FORGE_AZURE_OPENAI_DEPLOY: openAiEnabled ? 'true' : 'false'
      FORGE_AZURE_OPENAI_RESOURCE_ID: openAiEnabled ? openAi.outputs.id : ''
      FORGE_AZUREML_SUBSCRIPTION_ID: subscription().subscriptionId
      FORGE_AZUREML_RESOURCE_GROUP: rg.name
      FORGE_AZUREML_WORKSPACE: ml.outputs.workspaceName
      FORGE_AZUREML_COMPUTE: ml.outputs.clusterName
      FORGE_TRAINER_IMAGE: '${ml.outputs.registryLoginServer}/${trainerRepository}:${trainerImageTag}'
      // Evaluation, the judge and the router call the teacher, hosted students and the judge on the same
      // Azure OpenAI account with the app's identity (no key); the teacher deployment is the judge.
      FORGE_TEACHER_BASE_URL: openAiEnabled ? openAi.outputs.endpoint : ''
      FORGE_STUDENT_BASE_URL: openAiEnabled ? openAi.outputs.endpoint : ''
      FORGE_GRADER_MODEL: teacherModel
      FORGE_INFERENCE_TIMEOUT_S: '60'
      FORGE_INFERENCE_CONCURRENCY: '8'
      // The router: student time limit before the teacher answers, route cache, upstream connections, trace buffer.
      FORGE_ROUTER_TIMEOUT_S: '30'
      FORGE_ROUTER_ROUTE_TTL_S: '2'
      FORGE_ROUTER_CONCURRENCY: '256'
      // Router calls reach the trace table through the capture queue (the capture_traces function drains it).
      FORGE_ROUTER_CAPTURE: 'true'
      FORGE_ROUTER_TRACE_QUEUE: '10000'
      // The reconciler's stage deadlines (6 budgets without progress); host.json's functionTimeout (10 min) stops
      // an activity that overruns.
      FORGE_ACTIVITY_BUDGET_S: '300'
      // A training provider answering 5xx/429 is waited out on durable timers for up to an hour, then the job fails.
      FORGE_PROVIDER_OUTAGE_S: '3600'
      // Curation fans out: one activity per trace shard, 8 at a time, each well within the activity budget.
      FORGE_CURATE_FANOUT: '8'
      // Finished jobs are published as CloudEvents to this topic, with the app's identity.
      FORGE_NOTIFY_EVENTGRID_ENDPOINT: notifications.outputs.endpoint
      FORGE_TEACHER_PRICE_INPUT: teacherPriceInput
      FORGE_TEACHER_PRICE_OUTPUT: teacherPriceOutput
      FORGE_STUDENT_PRICE_INPUT: studentPriceInput
      FORGE_STUDENT_PRICE_OUTPUT: studentPriceOutput
      // LoRA students: loaded by name into the vLLM endpoint (with the app's identity) when it is deployed.
      FORGE_LORA_SERVER: loraServerEnabled ? 'vllm' : 'auto'
      FORGE_LORA_SERVER_URL: loraServerEnabled ? 'https://${loraEndpointName}.${location}.inference.ml.azure.com/v1' : ''
      // Benchmark code runs in the session pool; without one, an evaluation that needs it stops with the fix.
      FORGE_SANDBOX_POOL_ENDPOINT: enableCodeSessions ? sessions.outputs.endpoint : ''
    }
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: api.outputs.principalId
    operatorPrincipalId: principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    openAiName: openAiEnabled ? openAi.outputs.name : ''
    workspaceName: ml.outputs.workspaceName
    sessionPoolName: enableCodeSessions ? sessions.outputs.name : ''
    notificationTopicName: notifications.outputs.name
  }
}

module trainingEvents './app/training-events.bicep' = {
  name: 'training-events'
  scope: rg
  params: {
    location: location
    tags: tags
    topicName: '${abbrs.eventGridSystemTopics}${resourceToken}'
    workspaceName: ml.outputs.workspaceName
    functionAppName: api.outputs.name
    subscriptionEnabled: trainingEventsEnabled
  }
}

// azd writes these into .azure/<env>/.env: the hooks read them, and `azd env get-values` gives a laptop
// the same FORGE_* values the Function App has (the forge CLI then works against the deployed storage).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_CONTAINER_REGISTRY_NAME string = ml.outputs.registryName
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = ml.outputs.registryLoginServer
output FORGE_TRAINER_REPOSITORY string = trainerRepository
output FORGE_TRAINER_IMAGE_TAG string = trainerImageTag
output EVENTGRID_TOPIC_NAME string = trainingEvents.outputs.topicName
output FORGE_NOTIFY_EVENTGRID_ENDPOINT string = notifications.outputs.endpoint
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.applicationInsightsConnectionString
output FORGE_PROVIDER string = provider
output FORGE_STORAGE_BLOB_URL string = storage.outputs.blobEndpoint
output FORGE_STORAGE_TABLE_URL string = storage.outputs.tableEndpoint
output FORGE_AZURE_OPENAI_ENDPOINT string = openAiEnabled ? openAi.outputs.endpoint : ''
output FORGE_AZUREML_SUBSCRIPTION_ID string = subscription().subscriptionId
output FORGE_AZUREML_RESOURCE_GROUP string = rg.name
output FORGE_AZUREML_WORKSPACE string = ml.outputs.workspaceName
output FORGE_AZUREML_COMPUTE string = ml.outputs.clusterName
output FORGE_LORA_SERVER_ENABLED bool = loraServerEnabled
output FORGE_LORA_SERVER_IMAGE string = loraServerImage
output FORGE_LORA_ENDPOINT_NAME string = loraEndpointName
output FORGE_LORA_BASE_MODEL string = loraBaseModel
output FORGE_LORA_INSTANCE_TYPE string = loraInstanceType
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output FORGE_TRAINER_IMAGE string = '${ml.outputs.registryLoginServer}/${trainerRepository}:${trainerImageTag}'
