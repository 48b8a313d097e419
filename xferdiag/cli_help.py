"""The command line's help texts: one per RunConfig field (the flags themselves are generated from its types;
a field without help text stops the parser from being built) and the other options' shared words."""

from __future__ import annotations

from .config import DETECTOR_NORMS, DETECTOR_SCALES, OPTIMIZERS, SCHEDULES, STRATEGIES

FINETUNE_HELP = {
    "data": "target data: a folder of class folders (optionally train/val/test), a .npz (images or a 2-D table), a CSV table, "
            "digits:<name> / cancer:<name>, or for detection a COCO, Pascal VOC or YOLO folder (or coco:/voc:/yolo:PATH)",
    "task": "what is predicted: classification or detection (default: what the data say; a COCO/VOC/YOLO folder means detection)",
    "backbone": "detection: the classifier a detector is built on, in any spelling --model takes (mobilenet_v2, timm:NAME, "
                "builtin:efficientnet-lite0, module:function); --model then names the detector family (fasterrcnn, retinanet, fcos)",
    "detector_norm": f"detection: the normalisation layers of both arms, one of {', '.join(DETECTOR_NORMS)}: batch (trainable "
                     "BatchNorm, the fair default), group (GroupNorm everywhere: He et al. 2019's way to train a detector from "
                     "scratch), frozen (torchvision's fine-tuning recipe: the backbone's BatchNorm frozen at its loaded statistics; "
                     "a scratch arm then keeps its initial statistics, which handicaps it)",
    "detector_scale": f"detection: what a step samples and keeps per image, one of {', '.join(DETECTOR_SCALES)}: cpu (128 px, "
                      "fewer sampled regions and proposals; trains on a laptop CPU) or torchvision (the builder's own defaults, "
                      "sized for a GPU); --image-size sets the shorter side under either",
    "fpn_channels": "detection on --backbone: the width of the feature pyramid xferdiag puts on the backbone (default 128: "
                    "trains 1.74x faster on a CPU than torchvision's 256 and, where measured, scored 11 mAP points higher at the "
                    "same epochs, see reports/benchmarks.md; torchvision's own detectors keep 256)",
    "model": "architecture: torchvision name (resnet18, or resnet18:IMAGENET1K_V1 to download), timm:NAME, module:function, "
             "path/to/file.py:function, builtin:digits-cnn or builtin:tabular-mlp[:hidden=64-64]; for detection a torchvision "
             "detector (fasterrcnn_mobilenet_v3_large_320_fpn, ...) or a family on --backbone",
    "pretrained_checkpoint": "local state_dict of the pretrained classifier (offline alternative to NAME:WEIGHTS); for detection "
                             "the backbone classifier's state_dict or a whole detector's",
    "source_data": "the data the model was pretrained on, for the shift analysis",
    "strategy": f"one of {', '.join(STRATEGIES)}; several (linear-probe,lp-ft,full) train one transfer arm each beside "
                "one shared scratch arm, in one run directory",
    "partial_blocks": "with --strategy partial: how many of the last backbone blocks train",
    "head_hidden": "new layers: hidden sizes of an MLP head, e.g. 256,128 (default: one linear layer)",
    "head_dropout": "dropout between the MLP head's layers",
    "epochs": "training budget per arm and seed",
    "lp_epochs": "with lp-ft: epochs of the linear-probe phase (default: half)",
    "seeds": "number of seeds (0..N-1); arms are paired by seed; with --resume, a larger N adds seeds to a finished run",
    "min_effect": "smallest accuracy gap worth deciding (default 0.03, 3 points): an inconclusive verdict says how many "
                  "seeds or test examples would decide it",
    "baseline": "scratch (train the same architecture from random weights) or none",
    "scratch_lr": "learning rate of the scratch arm (default: --lr, the rate of the transfer arm's new layers), "
                  "or auto: pick it by a short search on the validation split",
    "scratch_epochs": "training budget of the scratch arm (default: --epochs); auto trains it at 1x, 2x and 4x --epochs "
                      "(arms scratch, scratch-2x, scratch-4x) and says at which budget, if any, scratch caught up",
    "catch_up_margin": "with --scratch-epochs auto: scratch caught up when the 90% interval of the gap lies inside "
                       "+-this margin (TOST; 0.02 is 2 points)",
    "shots": "labelled target examples per class: a number, 'all', or several (5,20,all)",
    "lr": "learning rate of new layers; several (0.01,0.001) train one transfer arm each beside one scratch arm, whose rate "
          "is pinned once (--scratch-lr, searched once with auto, else the first of the list)",
    "batch_size": "examples per training step (the global batch under torchrun)",
    "optimizer": f"one of {', '.join(OPTIMIZERS)}",
    "weight_decay": "weight decay of every trained layer (none on the backbone with --l2sp)",
    "momentum": "with --optimizer sgd: momentum (Nesterov when above 0)",
    "schedule": f"learning-rate schedule over the epochs: one of {', '.join(SCHEDULES)}",
    "warmup_epochs": "epochs of linear learning-rate warm-up before the schedule",
    "step_size": "with --schedule step: epochs between learning-rate drops",
    "gamma": "with --schedule step: factor of each learning-rate drop",
    "val_fraction": "share of the target data held out for validation (early stopping, --scratch-lr auto)",
    "test_fraction": "share of the target data held out for the test split the verdict is computed on",
    "split_seed": "seed of the train/val/test split (the same for every arm and training seed)",
    "backbone_lr_mult": "pretrained layers train at lr times this; several (0.1,1) train one transfer arm each",
    "layer_decay": "layer-wise learning-rate decay per backbone block (1 = off); several (0.65,1) train one transfer arm each",
    "l2sp": "L2-SP strength: penalty toward the pretrained weights (0 = off)",
    "patience": "early stopping: epochs without a better validation loss",
    "augment": "training augmentation",
    "group_by_length": "text: training batches of texts of similar length (less padding; shuffled pools of 50 batches)",
    "amp": "mixed precision on GPU: auto, on, off",
    "device": "auto, cpu, cuda or cuda:N",
    "channels_last": "GPU: convolutions in channels-last memory layout (faster with mixed precision on recent GPUs)",
    "compile": "compile the model with torch.compile (slower start, faster epochs on long runs)",
    "workers": "data-loading worker processes (0: load in the training process)",
    "threads": "CPU threads for torch (default: all available cores)",
    "max_length": "text models: tokens per text (default: 128); longer texts are truncated, unless --no-truncate",
    "truncate": "text models: cut texts longer than --max-length (default); --no-truncate leaves them out, counted",
    "freeze_embeddings": "text models: the transfer arm keeps its pretrained embeddings (words, positions) frozen whatever the strategy",
    "image_size": "square input size (default: the weights' record; else --source-data's image size, else the data's own, at most 224); "
                  "for detection the shorter side each image is resized to (default: --detector-scale's)",
    "channels": "input channels the model takes (default: those of its first convolution); gray and RGB data are converted",
    "mean": "per-channel normalisation mean, e.g. 0.5,0.5,0.5 (default: the weights' own, else ImageNet's)",
    "std": "per-channel normalisation std (default: the weights' own, else ImageNet's)",
    "normalize": "auto (the mean/std above) or none (feed pixels in [0, 1])",
    "checkpoint_every": "seconds of training between checkpoints (0 = after every epoch; default 60); --resume replays at most this much",
}

LABEL_COLUMN_HELP = "CSV tables and CSV/JSONL texts: the column holding the class labels (default: label)"
TEXT_COLUMN_HELP = "CSV/JSONL texts: the column holding the text (default: text)"
RUN_DIR_HELP = "run directory made by 'xferdiag finetune' or 'audit' (or written by hand, docs/rundir.md)"
SEED_HELP = "seed of every random draw (examples sampled, permutations, explainers' samples): the same seed, the same result"
QUIET_HELP = "no progress bars"
