"""The one Pulumi program of the project (``__main__.py``) and its deployment targets."""
