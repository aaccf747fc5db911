"""Long-term memory: hybrid search store, embedders, agent tools, the context builder."""
