"""Tools specialists can call: the python sandbox, OCR, TTS, knowledge search."""
