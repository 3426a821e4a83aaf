"""Training the paper's network on a manifest of labelled scans.

config (TrainingConfig, torch-free), folds (stratified patient-level folds), data (the cached
preprocessed dataset and its augmentation), trainer (train(): set-up, epochs, early stopping,
checkpoints, the bundle). Nothing is imported here, so that the CLI can read the configuration
without importing torch.
"""
