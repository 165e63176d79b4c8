"""The Pulumi toolchain of the project: CLI build, language host, engine watchdog."""
