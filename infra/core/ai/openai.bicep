// Azure OpenAI account for hosted fine-tuning (provider azure-openai) and, optionally, the teacher deployment.
// Keys are disabled; the app uses its managed identity (Cognitive Services OpenAI Contributor, see rbac.bicep).
param location string
param tags object = {}
param name string
param teacherModel string
param teacherModelVersion string
@description('Thousands of tokens per minute for the teacher deployment; 0 deploys no teacher.')
param teacherCapacity int = 0

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource teacher 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = if (teacherCapacity > 0) {
  parent: account
  name: teacherModel
  sku: {
    name: 'GlobalStandard'
    capacity: teacherCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: teacherModel
      version: teacherModelVersion
    }
  }
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.endpoint
