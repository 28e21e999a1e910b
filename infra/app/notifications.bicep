// Job notifications as CloudEvents (forge.job.completed, forge.job.failed, forge.model.promoted, …): an Event Grid
// topic the Function App publishes to with its identity (EventGrid Data Sender on this topic only, in
// rbac.bicep; no keys).
// Subscribers (Logic Apps, Teams, Slack, a webhook) subscribe to it and need no polling.
param location string
param tags object = {}
param name string
resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output endpoint string = topic.properties.endpoint
output name string = topic.name
