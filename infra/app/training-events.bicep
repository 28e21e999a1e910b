// Azure ML → Event Grid → the `eventgrid_training` function: a finished training run wakes its Forge job at
// once instead of at the next poll. Deployed by main.bicep (topic; subscription once enabled) and by the
// postdeploy hook (infra/hooks/subscribe-training-events.sh), because Event Grid validates that the target
// function exists, and it exists only after `azd deploy`.
param location string
param tags object = {}
param topicName string
param workspaceName string
param functionAppName string
@description('False until the function is deployed.')
param subscriptionEnabled bool = false
@description('Must match the Event Grid-triggered function in function_app.py.')
param functionName string = 'eventgrid_training'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: topicName
  location: location
  tags: tags
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }

  resource runStatusChanged 'eventSubscriptions' = if (subscriptionEnabled) {
    name: 'forge-run-status-changed'
    properties: {
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: '${functionApp.id}/functions/${functionName}'
          maxEventsPerBatch: 1
          preferredBatchSizeInKilobytes: 64
        }
      }
      eventDeliverySchema: 'EventGridSchema'
      filter: {
        includedEventTypes: [
          'Microsoft.MachineLearningServices.RunStatusChanged'
        ]
        // Only the end of a run matters to a job; polling covers everything in between.
        advancedFilters: [
          {
            operatorType: 'StringIn'
            key: 'data.RunStatus'
            values: [
              'Completed'
              'Failed'
              'Canceled'
            ]
          }
        ]
      }
      retryPolicy: {
        maxDeliveryAttempts: 30
        eventTimeToLiveInMinutes: 1440
      }
    }
  }
}

output topicName string = topic.name
