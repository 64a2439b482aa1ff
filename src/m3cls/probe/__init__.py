"""The probe: text embeddings from a frozen encoder (embeddings), their on-disk cache (cache), and the small
head fitted on them (head)."""
