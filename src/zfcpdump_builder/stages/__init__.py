"""The build: each stage (source, kconfig, kernel, runtime, initramfs, budget), the pipeline
that runs them, and the published artifacts with their manifest."""
