"""Classification: one label per example, cross-entropy, accuracy and macro-F1."""
