"""What detection supports so far and how the report names its results (see :mod:`xferdiag.tasks.descriptor`);
no torch here. Its analysis is box statistics and image- and instance-level shift (shift.json) and the run's
pretrained backbone's transferability on the boxes (transferability.json); ``rank`` scores candidate backbones on
the boxes before training (:mod:`.transferability`); its explanations are its own (D-RISE and EigenCAM per box,
shown by its section "box_explanations"); layer similarity of detection runs is not built yet."""

DESCRIPTOR = dict(
    metric="map", label="test mAP@[.5:.95]", header="mAP@[.5:.95]",
    columns=(("ap50", "AP50", "pct"), ("ap75", "AP75", "pct")),
    curves=(("val_ap50", "Validation AP50 (%)", 100.0), ("val_map", "Validation mAP@[.5:.95] (%)", 100.0),
            ("train_loss", "Training loss (sum of the detector's losses)", 1.0)),
    curves_lede="Validation AP50 and mAP per epoch (computed in eval mode), and the training loss",
    loss_panel="",
    evidence=("ap50_min", "test AP50", "box_prior_ap50", "box prior"),
    per_class=None,
    stages=("finetune", "audit", "verdict", "analyze", "explain", "report", "compare", "rank"),
    records=("detections",),
    analyses=("shift", "transferability"),
    scores=("logme", "h_score", "h_score_shrinkage", "logme_box"),
    sections=("dataset_card", "per_class_ap", "precision_recall", "gallery", "error_breakdown", "box_explanations"),
    explanations="box_explanations",
)
