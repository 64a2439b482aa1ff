"""Data in: the input formats (readers), columnar sources, records and their read options, streamed JSON,
validation splits and folds, the data inspection, and the demo corpus. No torch here."""
