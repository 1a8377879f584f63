"""Event files: the schema, chunked validated reading, atomic writing, importers, inspection."""
