"""What the toy task supports and how the report names its results; no torch here."""

DESCRIPTOR = dict(
    metric="map", label="test mAP over labels", header="mAP",
    columns=(),
    curves=(("val_map", "Validation mAP over labels (%)", 100.0), ("train_loss", "Training loss (binary cross-entropy)", 1.0)),
    curves_lede="Validation mAP per epoch, and the training loss",
    loss_panel="",
    evidence=("map_min", "test mAP", "prior_map", "label prior"),
    per_class=None,
    stages=("finetune", "verdict", "report"),
    records=("label_scores",),
)
