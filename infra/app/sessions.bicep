// Where model-written benchmark code runs in Azure (src/forge/evaluation/sessions.py): an Azure Container Apps
// dynamic sessions pool of Python code interpreters. Each run asks for a new session by a fresh identifier; every
// session is a Hyper-V sandbox with no network egress, destroyed after its cooldown. The app's identity may only
// execute code here (rbac.bicep: Azure ContainerApps Session Executor, scoped to this pool).
param location string
param tags object = {}
param name string
@minValue(1)
@description('Sessions alive at once; evaluation runs a few at a time, each in its own session.')
param maxSessions int = 20
@minValue(300)
@description('Seconds an idle session lives before the pool destroys it.')
param cooldownSeconds int = 300

resource pool 'Microsoft.App/sessionPools@2024-02-02-preview' = {
  name: name
  location: location
  tags: tags
  properties: {
    poolManagementType: 'Dynamic'
    containerType: 'PythonLTS'
    scaleConfiguration: {
      maxConcurrentSessions: maxSessions
    }
    dynamicPoolConfiguration: {
      executionType: 'Timed'
      cooldownPeriodInSeconds: cooldownSeconds
    }
    sessionNetworkConfiguration: {
      status: 'EgressDisabled'
    }
  }
}

output name string = pool.name
output endpoint string = pool.properties.poolManagementEndpoint
