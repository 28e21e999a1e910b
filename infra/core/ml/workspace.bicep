// Azure ML workspace for provider `azureml`: its Key Vault and Container Registry, and a GPU cluster that
// scales to zero, so an idle Forge costs nothing here. The gpu-trainer image lives in this registry.
param location string
param tags object = {}
param workspaceName string
param keyVaultName string
param registryName string
param storageAccountName string
param applicationInsightsName string
param clusterName string
param vmSize string
param maxNodes int = 1
@allowed([
  'Dedicated'
  'LowPriority'
])
param priority string = 'Dedicated'

var roles = {
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Access policies, not RBAC: the workspace adds the policy for its own identity when it is created.
resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    accessPolicies: []
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: { name: 'Basic' }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  name: workspaceName
  location: location
  tags: tags
  sku: { name: 'Basic', tier: 'Basic' }
  identity: { type: 'SystemAssigned' }
  properties: {
    friendlyName: 'Forge trainer'
    storageAccount: storage.id
    keyVault: keyVault.id
    applicationInsights: applicationInsights.id
    containerRegistry: registry.id
    // The storage account refuses shared keys, so the workspace's own datastores use identities too.
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
    v1LegacyMode: false
  }
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: clusterName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    computeType: 'AmlCompute'
    description: 'LoRA fine-tuning with the forge-trainer image'
    properties: {
      vmSize: vmSize
      vmPriority: priority
      osType: 'Linux'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        // Zero nodes when idle: GPU hours are billed only while a training job runs.
        minNodeCount: 0
        maxNodeCount: maxNodes
        nodeIdleTimeBeforeScaleDown: 'PT10M'
      }
    }
  }
}

// The cluster's own identity pulls the trainer image and reads the dataset / writes the adapter in Blob.
resource clusterAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, cluster.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: cluster.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource clusterBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, cluster.id, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: cluster.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output workspaceName string = workspace.name
output workspaceId string = workspace.id
output clusterName string = cluster.name
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
