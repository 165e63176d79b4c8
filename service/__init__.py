"""The control plane: a FastAPI service that runs case stacks through the Automation API."""
