"""The six reference architectures, each a short composition of the building blocks."""
