// The Forge Function App on Flex Consumption: function_app.py (timer, HTTP, Event Grid, Durable) on Python 3.11,
// with a system-assigned identity that reaches storage, telemetry, OpenAI and Azure ML (roles: rbac.bicep).
param location string
param tags object = {}
param name string
param planName string
param storageAccountName string
@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string
param applicationInsightsName string
@description('Forge settings (FORGE_*), merged under the platform settings below.')
param appSettings object = {}
param maximumInstanceCount int = 40
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the app to deploy service `api` to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  // Flex Consumption takes the runtime from functionAppConfig: FUNCTIONS_WORKER_RUNTIME and
  // FUNCTIONS_EXTENSION_VERSION must not be set here, and AzureWebJobsStorage is identity-based.
  resource settings 'config' = {
    name: 'appsettings'
    properties: union(appSettings, {
      // HTTP streams (azurefunctions-extensions-http-fastapi): the worker serves FastAPI, so SSE is not buffered.
      PYTHON_ENABLE_INIT_INDEXING: '1'
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      // Telemetry is sent with the app's Entra token (local auth is disabled on the component).
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
      // `/` is Forge's dashboard, not the Functions host's default home page.
      AzureWebJobsDisableHomepage: 'true'
    })
  }
}

output name string = functionApp.name
output id string = functionApp.id
output principalId string = functionApp.identity.principalId
output uri string = 'https://${functionApp.properties.defaultHostName}'
