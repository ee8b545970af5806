"""The HTTP routes, one module per area; each holds a module-level `router` of named handlers."""
