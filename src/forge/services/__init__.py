"""Use cases the entry points (API, CLI, Functions) call: each parses nothing and shapes nothing, it just acts."""
