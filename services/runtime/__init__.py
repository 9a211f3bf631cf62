"""The runtime: `runbus run all` supervises one child process per service (process-per-stage)."""
