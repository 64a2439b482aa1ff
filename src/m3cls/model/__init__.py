"""The model and what travels with it: the contract (m3cls.json), the folder read once
(folder: its kind, contract and files), the one loader (loading), runners
(backends), text to inputs (tokens), the probe's heads, LoRA, the model card, the bundled model."""
