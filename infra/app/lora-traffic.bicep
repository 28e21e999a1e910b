// Routes all of the LoRA endpoint's traffic to its vLLM deployment (an endpoint's traffic can name a deployment
// only once the deployment exists, so lora-endpoint.bicep applies this after creating it).
param location string
param tags object = {}
param workspaceName string
param endpointName string
param deploymentName string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
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
    authMode: 'AADToken'
    publicNetworkAccess: 'Enabled'
    traffic: {
      '${deploymentName}': 100
    }
  }
}
