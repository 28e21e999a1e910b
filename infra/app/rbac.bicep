// Data-plane roles for the Function App's identity: exactly the services Forge calls, each scoped to its
// one resource, and nothing at resource-group or subscription level.
param appPrincipalId string
@description('The person running azd (may be empty): blob and table data access for the forge CLI.')
param operatorPrincipalId string = ''
param storageAccountName string
param applicationInsightsName string
@description('Empty when the Azure OpenAI account is not deployed.')
param openAiName string = ''
param workspaceName string
@description('Empty when no code session pool is deployed (enableCodeSessions).')
param sessionPoolName string = ''
@description('The Event Grid topic job notifications are published to (app/notifications.bicep).')
param notificationTopicName string

// Built-in role definition ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Flex deployment package + Forge blobs; the host needs Owner for blob leases
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Durable Functions queues
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Forge tables + Durable Functions history
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Entra-authenticated telemetry
  cognitiveServicesOpenAIContributor: 'a001fd3d-188f-4b5d-821b-7da978bf7442' // files + fine-tuning jobs
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121' // submit, watch and cancel training jobs
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // operator only
  containerAppsSessionExecutor: '0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0' // run benchmark code in a session, nothing else
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7' // publish job CloudEvents to the notification topic
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (!empty(openAiName)) {
  name: openAiName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Deploying a fine-tuned model is a control-plane write that this role lacks; docs/deploy.md shows how to
// add Cognitive Services Contributor on this one account when Forge should deploy students itself.
resource appOpenAi 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(openAiName)) {
  name: guid(resourceId('Microsoft.CognitiveServices/accounts', openAiName), appPrincipalId, roles.cognitiveServicesOpenAIContributor)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMl 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sessionPool 'Microsoft.App/sessionPools@2024-02-02-preview' existing = if (!empty(sessionPoolName)) {
  name: sessionPoolName
}

// Executes code in this one pool's sessions; it cannot create, change or read other pools.
resource appSessions 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(sessionPoolName)) {
  name: guid(resourceId('Microsoft.App/sessionPools', sessionPoolName), appPrincipalId, roles.containerAppsSessionExecutor)
  scope: sessionPool
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.containerAppsSessionExecutor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The operator's own access, so `forge` on a laptop (az login) can create the first API key and read jobs.
resource operatorBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: operatorPrincipalId
  }
}

resource operatorTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage.id, operatorPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: operatorPrincipalId
  }
}

resource notificationTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: notificationTopicName
}

resource appNotifications 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notificationTopic.id, appPrincipalId, roles.eventGridDataSender)
  scope: notificationTopic
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
  }
}
