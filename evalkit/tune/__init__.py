"""The real offline model (built from its registry package) and the LoRA adapters evalkit trains on it."""
