"""Which models exist and where their files are: the catalog, the store, custom files, loading, the registry."""
