"""Stage 2, loading: Pub/Sub messages of rows into the warehouse, once."""
