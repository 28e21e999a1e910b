// The LoRA server in Azure (docs/serving.md): an Azure ML managed online endpoint running vLLM for the students'
// base model; Forge loads each student into it as an adapter, by name, at run time. Off by default
// (loraServerEnabled in main.bicep) because its GPU instance runs around the clock: Standard_NC4as_T4_v3 (1 T4,
// 16 GB) is about 0.53 USD an hour (~390 USD a month), Standard_NC24ads_A100_v4 (1 A100, 80 GB) about 3.67 USD an
// hour (~2,700 USD a month), pay-as-you-go in East US (2025); it needs GPU quota for the family in the region.
// Deployed by main.bicep when the operator names an image, else by the postprovision hook once it has built
// lora-server/Dockerfile into the registry.
param location string
param tags object = {}
param workspaceName string
param endpointName string
@description('The vLLM image: lora-server/Dockerfile built into the registry, or one the operator names.')
param image string
@description('The Hugging Face id of the base model the students were trained on.')
param baseModel string
param instanceType string
@description('Forge storage: the endpoint reads adapters from its models container with its own identity.')
param storageAccountName string
param registryName string

var roles = {
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // read adapters from the models container
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d' // pull the vLLM image built into the registry
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' = {
  parent: workspace
  name: endpointName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // Entra ID tokens only: the Function App calls it with its identity (AzureML Data Scientist on the workspace).
    authMode: 'AADToken'
    publicNetworkAccess: 'Enabled'
  }
}

resource environments 'Microsoft.MachineLearningServices/workspaces/environments@2024-10-01' = {
  parent: workspace
  name: 'forge-vllm'
  properties: {
    description: 'vLLM with runtime LoRA updating and adapters fetched from Forge storage (lora-server/Dockerfile)'
  }
}

resource environment 'Microsoft.MachineLearningServices/workspaces/environments/versions@2024-10-01' = {
  parent: environments
  // Versions are immutable: a new image gets a new version.
  name: take(uniqueString(image), 10)
  properties: {
    image: image
    osType: 'Linux'
    inferenceConfig: {
      livenessRoute: { port: 8000, path: '/health' }
      readinessRoute: { port: 8000, path: '/health' }
      scoringRoute: { port: 8000, path: '/' }
    }
  }
}

resource adapterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, endpoint.id, roles.storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: endpoint.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource imagePull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, endpoint.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: endpoint.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource deployment 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments@2024-10-01' = {
  parent: endpoint
  name: 'vllm'
  location: location
  tags: tags
  sku: {
    name: 'Default'
    capacity: 1
  }
  properties: {
    endpointComputeType: 'Managed'
    instanceType: instanceType
    environmentId: environment.id
    environmentVariables: {
      FORGE_LORA_BASE_MODEL: baseModel
      FORGE_ADAPTER_STORAGE: storage.properties.primaryEndpoints.blob
      VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True'
    }
    // The base model downloads and loads before the first probe can pass.
    livenessProbe: { initialDelay: 'PT10M', period: 'PT30S', timeout: 'PT10S', failureThreshold: 30 }
    readinessProbe: { initialDelay: 'PT10M', period: 'PT10S', timeout: 'PT10S', failureThreshold: 30 }
    requestSettings: { requestTimeout: 'PT90S', maxConcurrentRequestsPerInstance: 64 }
    egressPublicNetworkAccess: 'Enabled' // the base model comes from the Hugging Face hub
  }
  dependsOn: [adapterReader, imagePull]
}

// All traffic to the one deployment, set once it exists.
module traffic './lora-traffic.bicep' = {
  name: 'lora-traffic'
  params: {
    location: location
    tags: tags
    workspaceName: workspaceName
    endpointName: endpoint.name
    deploymentName: deployment.name
  }
}

output endpointName string = endpoint.name
output scoringUri string = endpoint.properties.scoringUri
