"""Built-in live viewers (registered under the ``ipyrecorder.viewers`` entry-point group)."""
