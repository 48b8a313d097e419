"""How the report names classification results (see :mod:`xferdiag.tasks.terms`); no torch here."""

TERMS = dict(
    metric="accuracy", label="test accuracy", header="Accuracy",
    columns=(("macro_f1", "Macro F1", "pct"), ("loss", "Test loss", "num")),
    curves=(("val_accuracy", "Validation accuracy (%)", 100.0), ("val_loss", "Loss (validation; training dashed)", 1.0)),
    curves_lede="Validation accuracy and loss per epoch",
    loss_panel="val_loss",
    evidence=("test_accuracy", "test accuracy", "test_chance", "chance"),
)
