"""Records in and results out: one reader per format, value typing, mapping files, spills and output sinks."""
