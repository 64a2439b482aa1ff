"""The model and what travels with it: the contract (m3cls.json), the one loader (loading), runners
(backends), text to inputs (tokens), the probe's heads, LoRA, the model card, the bundled model."""
