"""Memory: embedder, Chroma store, lexical index, ingestion, recall."""
