"""Memory: the knowledge base (Chroma + bm25s, hybrid search with citations) and long-term memory.

Heavy libraries (chromadb, bm25s, sentence-transformers) load on first use, not on import.
"""

from tessera.memory.ingest import IngestReport, ingest
from tessera.memory.knowledge import Hit, KnowledgeBase
from tessera.memory.recall import LongTermMemory, Memory

__all__ = ["Hit", "IngestReport", "KnowledgeBase", "LongTermMemory", "Memory", "ingest"]
