"""The Faust side of parcelwatch: topics, agents, adapters, metrics, CLI, replay."""
