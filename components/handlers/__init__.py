"""Lambda handler code: ordinary modules, packaged one file per function."""
