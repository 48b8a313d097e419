"""What classification supports and how the report names its results (see :mod:`xferdiag.tasks.descriptor`); no torch here."""

DESCRIPTOR = dict(
    metric="accuracy", label="test accuracy", header="Accuracy",
    columns=(("macro_f1", "Macro F1", "pct"), ("loss", "Test loss", "num")),
    curves=(("val_accuracy", "Validation accuracy (%)", 100.0), ("val_loss", "Loss (validation; training dashed)", 1.0)),
    curves_lede="Validation accuracy and loss per epoch",
    loss_panel="val_loss",
    evidence=("test_accuracy", "test accuracy", "test_chance", "chance"),
    per_class="per-class accuracy and confusion matrices",
    stages=("finetune", "audit", "verdict", "analyze", "explain", "report", "compare", "rank", "sweep"),  # every stage
    records=("predictions",),
)
