"""A rule pack on disk to the checked rule model: safe YAML, stream schemas, the loader, the type checker and lint."""
