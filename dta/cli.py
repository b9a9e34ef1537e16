"""The ``dta`` command: ``dta models | train | measure | convert | bench | report | compare |
history``.

Each subcommand is a thin layer over the package API; heavy imports happen
inside the command so ``dta --help`` stays fast. Every numeric option is
parsed by a checked type (:func:`positive_int` and friends), so ``--batch-size 0``
is a one-line error, not a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

#: ``dta models`` / ``dta measure`` defaults for a model built from options.
MODEL_DEFAULTS = dict(model="ms_resnet18", attention="dta", T=6, width=64, num_classes=10,
                      in_channels=3)


# -- checked option types ---------------------------------------------------------------------------



ENERGY_MODEL_HELP = ("compute only: horowitz45-fp32 (default), horowitz45-fp16, horowitz45-int8, "
                     "loihi; compute + memory: step45-fp32, lemaire2022, sram45-hierarchy "
                     "(every model is priced in the report; this one is the headline)")

def _number(kind, what: str, ok):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.what = what
    return parse


positive_int = _number(int, "an integer >= 1", lambda v: v >= 1)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a number > 0", lambda v: math.isfinite(v) and v > 0)
non_negative_float = _number(float, "a number >= 0", lambda v: math.isfinite(v) and v >= 0)
probability = _number(float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, naming the command's help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_models(args: argparse.Namespace) -> int:
    import pandas as pd

    from .attention import get_attention, list_attention
    from .models import create_model

    rows = []
    for name in list_attention():
        net = create_model(args.model, attention=name, T=args.T, num_classes=args.num_classes,
                           in_channels=args.in_channels, width=args.width)
        cls = get_attention(name)
        rows.append({
            "method": name,
            "placement": cls.placement,
            "params": sum(p.numel() for p in net.parameters()),
            "attention_params": sum(p.numel() for p in net.attention.parameters()),
            "code": cls.code,
        })
    table = pd.DataFrame(rows)
    print(f"{args.model}, width={args.width}, T={args.T}, {args.num_classes} classes, "
          f"{args.in_channels} input channels")
    print(table.to_markdown(index=False, intfmt=","))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import resolve_config, train

    overrides = {k: getattr(args, k) for k in _TRAIN_OVERRIDES}
    if args.no_progress:
        overrides["progress"] = False
    cfg = resolve_config(args.dataset, args.attention, args.preset, **overrides)
    record = train(cfg).record
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line under torchrun
        print(f"{cfg.dataset}/{record['method']}: test accuracy {record['accuracy']:.4f} "
              f"(best {record['best_accuracy']:.4f}), {record['params']:,} parameters, "
              f"record {cfg.out}/record.json")
    return 0


def _layer_table(report, per_step: bool):
    import pandas as pd

    # bytes at the energy model's word width; compute / memory energy in pJ under that model
    # (memory_pj is empty for a compute-only model)
    cols = ["ac", "mac", "other", "select", "dense_macs", "neuron_updates", "spikes", "bytes",
            "compute_pj", "memory_pj"]
    keys = ["layer", "type", "component"] + (["t"] if per_step else [])
    table = report.layers.groupby(keys, sort=False, as_index=False)[cols].sum(min_count=1)
    table["firing_rate"] = table["spikes"] / table["neuron_updates"].where(
        table["neuron_updates"] > 0)
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", "{:,.1f}".format):
        return table.to_string(index=False, na_rep="")


def _disagreements(given: dict, fixed: dict) -> list[str]:
    """``--opt VALUE (source: VALUE)`` for every option given that differs from ``fixed``."""
    return [f"--{name.replace('_', '-')} {given[name]} ({what}: {value})"
            for name, (value, what) in fixed.items()
            if given.get(name) is not None and given[name] != value]


def _cmd_measure(args: argparse.Namespace) -> int:
    import torch

    from .data import get_dataset_info
    from .experiment import default_input, load_trained, measurement_batch
    from .measure import DEFAULT_ENERGY_MODEL, profile
    from .models import create_model

    # Seed before any weights exist: an untrained model's weights come from this seed.
    torch.manual_seed(args.seed)
    given = {k: getattr(args, k) for k in MODEL_DEFAULTS}
    if args.checkpoint:
        model, cfg = load_trained(args.checkpoint)
        T, dataset, model_name = cfg.T, args.dataset or cfg.dataset, cfg.model
        ckpt = "the checkpoint's"
        wrong = _disagreements(given, {
            "model": (cfg.model, ckpt), "attention": (cfg.attention, ckpt), "T": (cfg.T, ckpt),
            "width": (cfg.width, ckpt), "num_classes": (model.num_classes, ckpt),
            "in_channels": (model.in_channels, ckpt)})
        if args.dataset:
            info = get_dataset_info(args.dataset)
            wrong += [f"--dataset {args.dataset} ({what} {mine}, {ckpt} {theirs})"
                      for what, mine, theirs in (
                          ("classes", info.num_classes, model.num_classes),
                          ("input channels", info.in_channels, model.in_channels))
                      if mine != theirs]
        if wrong:
            raise ValueError(f"options disagree with checkpoint {args.checkpoint}: "
                             f"{', '.join(wrong)}; leave them out to measure the checkpoint "
                             "as trained, or drop --checkpoint to measure an untrained model")
        source = f"checkpoint {args.checkpoint} ({cfg.dataset}/{cfg.attention}, T={T})"
    else:
        opts = {k: MODEL_DEFAULTS[k] if v is None else v for k, v in given.items()}
        T, dataset, model_name = opts["T"], args.dataset, opts["model"]
        classes, channels = opts["num_classes"], opts["in_channels"]
        if dataset:
            info = get_dataset_info(dataset)
            wrong = _disagreements(given, {
                "num_classes": (info.num_classes, f"dataset {dataset}"),
                "in_channels": (info.in_channels, f"dataset {dataset}")})
            if wrong:
                raise ValueError(f"options disagree with --dataset {dataset}: {', '.join(wrong)}; "
                                 "leave them out to take them from the dataset")
            classes, channels = info.num_classes, info.in_channels
        model = create_model(model_name, attention=opts["attention"], T=T, num_classes=classes,
                             in_channels=channels, width=opts["width"]).eval()
        source = (f"untrained {model_name} + {opts['attention']} (width {opts['width']}, T={T}, "
                  f"seed {args.seed})")
    if dataset:
        x = measurement_batch(dataset, root=args.data_root, T=T, n=args.batch_size)
        input_note = f"input: first {x.shape[1]} test samples of {dataset}"
    else:
        x, input_note = default_input(model_name, in_channels=model.in_channels, T=T,
                                      n=args.batch_size)
    report = profile(model, x, energy_model=args.energy_model or DEFAULT_ENERGY_MODEL,
                     fold_bn=not args.no_fold_bn)
    print(f"model: {source}")
    print(input_note)
    print(_layer_table(report, args.per_step))
    print()
    print(report.summary())
    if args.neurobench:
        from .measure import compare_neurobench

        frame = compare_neurobench(model, x, fold_bn=not args.no_fold_bn)
        print()
        print("NeuroBench SynapticOperations cross-check (Conv/Linear modules, per sample; "
              "Dense differs by the padding taps, see dta.measure.crosscheck):")
        print(frame.to_string(float_format="{:,.1f}".format))
    if args.json:
        report.to_json(args.json)
        print(f"report written to {args.json}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .experiment import convert_released

    cfg, info = convert_released(args.released, args.out, T=args.T, dataset=args.dataset,
                                 overwrite=args.overwrite)
    print(f"converted {args.released}: {cfg.model} + {cfg.attention}, T={cfg.T}, width "
          f"{cfg.width}, {info.num_classes} classes, {info.in_channels} input channels "
          f"({info.keys} keys, {info.tensors} tensors; dataset {cfg.dataset})")
    print(f"written {args.out}: a dta-bench checkpoint (weights and configuration, no optimizer "
          f"state); measure it with: dta measure --checkpoint {args.out}")
    return 0


def _csv(kind):
    what = getattr(kind, "what", kind.__name__)

    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            values = tuple(kind(t) for t in items)
        except (ValueError, argparse.ArgumentTypeError):
            values = ()
        if not values:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, each {what}, got {text!r}")
        return values

    parse.item = kind  # what each element is parsed with
    return parse


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, run_bench
    from .report import energy_vs_accuracy, to_markdown, update_readme

    given = dict(datasets=args.datasets, methods=args.methods, Ts=args.T, seeds=args.seeds,
                 out=args.out, runs=args.runs, data_root=args.data_root,
                 energy_model=args.energy_model, latency_T=args.latency_T,
                 latency_batch=args.latency_batch, latency_devices=args.latency_devices,
                 epochs=args.epochs, threads=args.threads, workers=args.workers,
                 latency_repeats=args.latency_repeats)
    # options not given keep BenchConfig's defaults (one place states them)
    cfg = BenchConfig(**{k: v for k, v in given.items() if v is not None},
                      progress=not args.no_progress, resume=args.resume)
    try:
        results = run_bench(cfg)
    except KeyboardInterrupt:  # run_bench has said what was kept and how to resume
        return 130
    for dataset, records in results.items():
        table = to_markdown(energy_vs_accuracy(records))
        print(f"\n## {dataset}: energy versus accuracy (per inference, {cfg.energy_model})\n")
        print(table)
        if args.readme and dataset == cfg.datasets[0]:
            note = (f"`{dataset}`, per inference, energy model `{cfg.energy_model}` "
                    f"(generated by `dta bench`; `results/{dataset}/`)\n\n")
            if not update_readme(args.readme, table, note):
                print(f"dta bench: {args.readme} has no bench-table markers; not updated",
                      file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .gpu_report import report_gpu_checks
    from .records import read_records
    from .report import (energy_vs_accuracy, report_files, to_markdown, update_readme,
                         write_tables)

    # GPU checks (scripts/gpu_check.py) given or found: tables and latency against T
    gpu_checks = report_gpu_checks(args.paths, args.out)
    records, problems = read_records(args.paths, measured=True)
    for problem in problems:
        if not problem.startswith(tuple(f"{f}:" for f in gpu_checks)):  # handled above
            print(f"dta report: skipped {problem}", file=sys.stderr)
    if not records:
        if any(v is not None for v in gpu_checks.values()):
            return 0
        print("dta report: error: no valid records found", file=sys.stderr)
        return 2
    table = to_markdown(energy_vs_accuracy(records))
    print(table)
    if args.out:
        paths = write_tables(records, args.out)  # the same function, and bytes, as dta bench
        print("written: " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    else:  # reading a report must not rewrite tracked files (results/ is committed)
        here = args.paths[0] if Path(args.paths[0]).is_dir() else Path(args.paths[0]).parent
        print(f"dta report: nothing written; --out DIR writes {', '.join(report_files(records))} "
              f"into DIR (--out {here} redraws them there)", file=sys.stderr)
    if args.readme and not update_readme(args.readme, table):
        print(f"dta report: {args.readme} has no bench-table markers", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, format_table, parse_thresholds
    from .records import read_records

    sides = []
    for label, path in (("OLD", args.old), ("NEW", args.new)):
        records, problems = read_records([path])
        for problem in problems:
            print(f"dta compare: {label}: skipped {problem}", file=sys.stderr)
        if not records:
            print(f"dta compare: error: no valid records in {label} ({path})", file=sys.stderr)
            return 2
        sides.append(records)
    # nothing on both sides raises NothingToCompare (a ValueError: exit 2, both sides named)
    result = compare(sides[0], sides[1], thresholds=parse_thresholds(args.threshold),
                     skip=args.skip or (), allow_missing=args.allow_missing,
                     labels=(f"OLD ({args.old})", f"NEW ({args.new})"))
    print(format_table(result.table))
    print(f"\ndta compare: {result.summary()}", file=sys.stderr)
    if result.failed:
        why = [f"{result.regressions} regression(s) beyond threshold"] if result.regressions \
            else []
        if result.missing and not args.allow_missing:
            why.append(f"{result.missing} record(s) of OLD missing in NEW (--allow-missing "
                       "accepts that)")
        print(f"dta compare: FAILED: {'; '.join(why)}", file=sys.stderr)
        return 1
    print("dta compare: ok: no metric moved the wrong way beyond its threshold"
          + (f" outside the seeds' noise ({result.noisy} change(s) beyond it within noise: "
             "the two sides' 95% intervals overlap)" if result.noisy else ""), file=sys.stderr)
    return 0


_TRAIN_OVERRIDES = ("model", "T", "width", "epochs", "batch_size", "lr", "momentum",
                    "weight_decay", "cutmix_alpha", "cutmix_prob", "mixup_alpha", "mixup_prob",
                    "label_smoothing", "augment", "seed", "data_root", "download", "out",
                    "resume", "overwrite", "device", "num_workers", "log_every",
                    "limit_batches", "threads", "amp", "channels_last", "compile",
                    "compile_backend")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dta",
        description="dta-bench: what spiking-neural-network attention really costs and buys.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("models", help="build every attention method on a backbone; print parameters")
    p.add_argument("--model", default=MODEL_DEFAULTS["model"],
                   help=f"backbone name (default: {MODEL_DEFAULTS['model']})")
    p.add_argument("--T", type=positive_int, default=MODEL_DEFAULTS["T"],
                   help=f"time steps (default: {MODEL_DEFAULTS['T']})")
    p.add_argument("--width", type=positive_int, default=MODEL_DEFAULTS["width"],
                   help=f"stem width (default: {MODEL_DEFAULTS['width']})")
    p.add_argument("--num-classes", type=positive_int, default=MODEL_DEFAULTS["num_classes"],
                   help=f"classes (default: {MODEL_DEFAULTS['num_classes']})")
    p.add_argument("--in-channels", type=positive_int, default=MODEL_DEFAULTS["in_channels"],
                   help=f"input channels (default: {MODEL_DEFAULTS['in_channels']})")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("train", help="train one attention method on one dataset",
                       description="Train with a preset; every option overrides the preset's value.")
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    p.add_argument("--attention", default="dta", help="attention method (default: dta)")
    p.add_argument("--preset", default=None, help="preset (default: the dataset's preset)")
    p.add_argument("--model", default=None, help="backbone (default: the preset's)")
    p.add_argument("--T", type=positive_int, default=None, help="time steps")
    p.add_argument("--width", type=positive_int, default=None, help="stem width")
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=None, help="global batch size")
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--momentum", type=non_negative_float, default=None)
    p.add_argument("--weight-decay", type=non_negative_float, default=None)
    p.add_argument("--cutmix-alpha", type=non_negative_float, default=None)
    p.add_argument("--cutmix-prob", type=probability, default=None,
                   help="CutMix probability per batch")
    p.add_argument("--mixup-alpha", type=non_negative_float, default=None,
                   help="Mixup alpha (0 = off)")
    p.add_argument("--mixup-prob", type=probability, default=None,
                   help="Mixup probability per batch when CutMix is not drawn")
    p.add_argument("--label-smoothing", type=probability, default=None)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="training-split augmentation")
    p.add_argument("--seed", type=non_negative_int, default=None)
    p.add_argument("--data-root", default=None, help="folder with the datasets (default: data)")
    p.add_argument("--download", action="store_true", default=None,
                   help="download missing datasets where possible")
    p.add_argument("--out", default=None, help="run folder (default: runs/<dataset>-<attention>-T<T>-s<seed>)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="start over in an --out that has checkpoints")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--num-workers", type=non_negative_int, default=None, help="DataLoader workers")
    p.add_argument("--log-every", type=positive_int, default=None, help="batches between log lines")
    p.add_argument("--limit-batches", type=non_negative_int, default=None,
                   help="batches per epoch (smoke runs; 0: all)")
    p.add_argument("--threads", type=non_negative_int, default=None,
                   help="torch CPU threads (0: torch's default)")
    p.add_argument("--amp", nargs="?", const="bf16", choices=["off", "bf16", "fp16"], default=None,
                   help="autocast the forward to bf16 (plain --amp) or fp16 (with a gradient "
                   "scaler); default off: float32")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="2-D convolutions in channels_last (NHWC) memory order")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (the first steps compile: slow)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default: inductor)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("measure", help="op counts, firing and energy of one model, per layer",
                       description="Without --checkpoint or --dataset, measures an untrained "
                       "model on a fixed default input (and says so).")
    # None = not given: with --checkpoint, a given value must agree with the checkpoint
    ckpt = "; with --checkpoint: the checkpoint's, and a different value is an error"
    for opt, kind, help_ in (("--model", str, "backbone"), ("--attention", str, "attention method"),
                             ("--T", positive_int, "time steps"), ("--width", positive_int,
                                                                   "stem width"),
                             ("--num-classes", positive_int, "classes"),
                             ("--in-channels", positive_int, "input channels")):
        default = MODEL_DEFAULTS[opt[2:].replace("-", "_")]
        extra = ", or the --dataset's" if opt in ("--num-classes", "--in-channels") else ""
        p.add_argument(opt, type=kind, default=None,
                       help=f"{help_} (default: {default}{extra}{ckpt})")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="torch seed, set before the model is built: an untrained model's "
                   "weights, so the same command gives the same numbers (default: 0)")
    p.add_argument("--checkpoint", default=None, help="a dta train checkpoint (last.pt / best.pt) "
                   "or a converted one (dta convert)")
    p.add_argument("--dataset", default=None, help="measure on this dataset's test samples "
                   "(default with --checkpoint: the checkpoint's dataset)")
    p.add_argument("--data-root", default="data")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="samples to measure on (default: 16)")
    p.add_argument("--energy-model", default=None, help=ENERGY_MODEL_HELP)
    p.add_argument("--no-fold-bn", action="store_true", help="count BatchNorm as MACs")
    p.add_argument("--per-step", action="store_true", help="one row per layer and time step")
    p.add_argument("--json", default=None, help="write the full report as JSON here")
    p.add_argument("--neurobench", action="store_true",
                   help="also print NeuroBench's SynapticOperations beside these counts")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("convert", help="a released DTA-SNN checkpoint -> a dta-bench checkpoint",
                       description="Map a checkpoint of the released DTA-SNN code "
                       "(https://github.com/MnJnKIM/DTA-SNN: the .pth.tar its main.py saves, "
                       "DTA_SNN_18 with DTA on or off) onto ms_resnet18 and write OUT "
                       "atomically: a dta-bench checkpoint (weights and configuration, no "
                       "optimizer state) that dta measure --checkpoint OUT reads. Model, "
                       "attention, T, width, classes and input channels come from the weights.")
    p.add_argument("--released", required=True, metavar="CKPT", help="the released checkpoint")
    p.add_argument("out", metavar="OUT", help="where to write the dta-bench checkpoint")
    p.add_argument("--T", type=positive_int, default=None,
                   help="time steps (default: read from T-XA's weights; needed for a checkpoint "
                   "without DTA, whose file name carries it as -T<N>-)")
    p.add_argument("--dataset", default=None,
                   help="the dataset it was trained on (default: from classes and input "
                   "channels: cifar10, cifar100 or cifar10-dvs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("bench", help="the main job: train, measure and tabulate every method",
                       description="Train every attention method with its dataset's preset over "
                       "several seeds, measure ops, firing, energy, energy up to each time step "
                       "and latency, and write tables with 95% intervals under OUT/<dataset>/. "
                       "The defaults (3 seeds, 2 worker processes) are sized to finish within "
                       "10 minutes on 2 CPU cores.")
    p.add_argument("--datasets", type=_csv(str), default=None,
                   help="comma-separated datasets (default: digits)")
    p.add_argument("--methods", type=_csv(str), default=None,
                   help="comma-separated attention methods (default: all registered)")
    p.add_argument("--T", type=_csv(positive_int), default=None,
                   help="comma-separated time steps (default: the preset's)")
    p.add_argument("--seeds", type=_csv(non_negative_int), default=None,
                   help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the presets' epochs")
    p.add_argument("--out", default=None, help="results folder (default: results)")
    p.add_argument("--runs", default=None, help="checkpoints and logs (default: runs/bench)")
    p.add_argument("--data-root", default=None, help="folder with the datasets (default: data)")
    p.add_argument("--energy-model", default=None, help=ENERGY_MODEL_HELP)
    p.add_argument("--latency-T", type=_csv(positive_int), default=None, help="(default: 2,4,8)")
    p.add_argument("--latency-batch", type=_csv(positive_int), default=None, help="(default: 1,16)")
    p.add_argument("--latency-devices", type=_csv(str), default=None,
                   help="devices to time (default: cpu,cuda; a missing GPU is skipped, with the reason)")
    p.add_argument("--readme", default=None,
                   help="also write the first dataset's table into this README's bench-table section")
    p.add_argument("--threads", type=non_negative_int, default=None,
                   help="torch CPU threads per run (default: the cores divided among the workers)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="runs trained at once, in worker processes (default: 2 on a CPU-only "
                   "machine with 2+ cores, else 1; 1 trains in this process)")
    p.add_argument("--latency-repeats", type=positive_int, default=None,
                   help="timed forwards per latency point (default: 5)")
    p.add_argument("--resume", action="store_true",
                   help="skip the runs a stopped bench with the same options finished "
                   "(same configuration and commit; their records are in --runs)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="tables and the Pareto plot from result records",
                       description="Print the energy-versus-accuracy table of the result "
                       "records (and the tables of any GPU check, scripts/gpu_check.py) found "
                       "in PATHS. It writes nothing unless asked: --out DIR writes "
                       "energy_vs_accuracy.{csv,md,tex}, pareto.png, anytime.{csv,png} and "
                       "training.{csv,png} (and <gpu-check>.md, <gpu-check>-latency.png) into "
                       "DIR, drawn by the same function as dta bench: on a folder dta bench "
                       "wrote they are the bench's files byte for byte (records.jsonl, "
                       "latency.csv and per_layer.csv are the bench's own).")
    p.add_argument("paths", nargs="+", help="record files or folders (searched recursively)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the tables and figures into DIR (default: write nothing)")
    p.add_argument("--readme", default=None, help="update this README's bench-table section")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("compare", help="direction-aware gate: exit 1 if a metric regressed",
                       description="Compare two sets of result records grouped on (dataset, "
                       "method, T) over their common seeds; with 2+ seeds on both sides a "
                       "change beyond the threshold fails only if the 95% intervals do not "
                       "overlap (see dta.compare). A (dataset, method, T, seed) of OLD "
                       "missing in NEW fails. Accuracy up is good; energy, ops and latency down "
                       "are good. Only result records are read (JSON that declares another "
                       "schema, such as a GPU check, is skipped). It says how many groups and "
                       "record pairs it compared; when no (dataset, method, T) is on both "
                       "sides it compares nothing and exits 2, naming what each side holds, "
                       "with or without --allow-missing. Exit 0: ok, 1: regression or "
                       "missing record, 2: bad input or nothing in common.")
    p.add_argument("old", help="reference records (file or folder, searched recursively)")
    p.add_argument("new", help="records to check (file or folder, searched recursively)")
    p.add_argument("--threshold", action="append", metavar="METRIC=VALUE",
                   help="override a threshold, e.g. accuracy=0.01 or energy_uj=3%% (repeatable)")
    p.add_argument("--skip", type=_csv(str), default=None,
                   help="metrics to leave out, e.g. latency_ms")
    p.add_argument("--allow-missing", action="store_true",
                   help="records of OLD missing in NEW are not failures (at least one "
                   "(dataset, method, T) must still be on both sides)")
    p.set_defaults(func=_cmd_compare)
    from .history import add_parser as add_history_parser  # asv's results over commits

    add_history_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        from .data import CorruptRecordingError
        from .train import CheckpointError

        if isinstance(err, RuntimeError) and not isinstance(err, (CheckpointError,
                                                                  CorruptRecordingError)):
            raise
        # User errors (unknown names, bad shapes, missing data) get one clear line.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"dta {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
