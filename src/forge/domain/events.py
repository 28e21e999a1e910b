"""Names the orchestration and its callers must agree on: the events a running `distill` waits for."""

TRAINING_UPDATED = "training.updated"  # a provider reported progress (webhook, Event Grid, `sync`): poll now
CANCEL = "cancel"  # stop the run at the next stage boundary
