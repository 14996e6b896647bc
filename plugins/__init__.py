"""Built-in sinks. Each is registered in pyproject.toml under the
``ipyrecorder.sinks`` entry-point group, exactly as a third-party sink would be."""
