"""The run report and the labelling server."""
