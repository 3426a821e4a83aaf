"""The `tumorclassifier` command line.

    tumorclassifier classify SCAN... [--manifest CSV] [--model B] [--out DIR] [--device D]
                                     [--cam-class C] [--force] [--debug]
    tumorclassifier classify --manifest CSV --out DIR --ray [ADDRESS] | --num-shards N --shard-id I
    tumorclassifier merge --out DIR [--manifest CSV]   join the shards' results tables
    tumorclassifier demo [--out DIR]      classify the bundled sample scans
    tumorclassifier view [SCAN...] [--port P] [--host H] [--token T]   the browser viewer
    tumorclassifier info [--model B]      show a model's card
    tumorclassifier fetch-model URL --sha256 HEX   download a published bundle into the cache
    tumorclassifier phantoms --out DIR --per-class N --seed S
    tumorclassifier train --manifest CSV --out MODEL_DIR [--fold K] [--resume] ...
    tumorclassifier train --synthetic --out MODEL_DIR [--held-out-family F] [--resume] ...
    tumorclassifier evaluate --model B --manifest CSV --out REPORT_DIR
    tumorclassifier evaluate --model B --synthetic [--families F ...] --out REPORT_DIR

Each sub-command names its handler (`set_defaults(handler=...)`) and imports what it needs
inside it: the parser itself imports neither torch nor SimpleITK, so `--help` answers at once.

Exit codes: 0 success, 2 a user error (one line on stderr; the traceback only with --debug),
1 an internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import typing
from pathlib import Path

from .classes import CLASS_CODES
from .errors import InputError
from .settings import (
    PHANTOM_FAMILIES,
    PHANTOM_GENERATORS,
    PRECISIONS,
    SYNTHETIC_FAMILIES,
    UPLOAD_LIMIT_MB,
    NetworkConfig,
    PreprocessingConfig,
    SyntheticConfig,
    TrainingConfig,
)

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INCOMPLETE = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tumorclassifier",
        description="Classify 3D post-contrast T1 brain MRI into six tumour types or no "
                    "tumour, with a Grad-CAM heatmap (after Chakrabarty et al. 2021).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser("classify", help="classify scans and write their heatmaps")
    classify.add_argument("scans", nargs="*", type=Path,
                          help="NIfTI/NRRD/MHA files or DICOM series folders")
    classify.add_argument("--manifest", type=Path, help="CSV with a 'path' column (and "
                          "optionally case, brain_mask)")
    _add_run_options(classify)
    _add_scale_out_options(classify)
    _add_archive_options(classify)

    demo = commands.add_parser("demo", help="classify the bundled sample scans with the "
                               "bundled default model")
    _add_run_options(demo, default_out="demo_output")

    classify.set_defaults(handler=_classify_command)
    demo.set_defaults(handler=_classify_command)

    merge = commands.add_parser("merge", help="join the results tables of the shards of "
                                "`classify --num-shards` into one, and say which cases are "
                                f"missing (exit code {EXIT_INCOMPLETE} when any is)")
    merge.add_argument("--out", type=Path, required=True, help="the shards' output folder")
    merge.add_argument("--manifest", type=Path, help="the manifest the shards were split from: "
                       "also name the cases that no shard's table holds")
    merge.set_defaults(handler=_merge)

    view = commands.add_parser("view", help="the browser viewer: open, classify and look at "
                               "scans in a web page (pip install 'tumorclassifier[web]')")
    view.add_argument("scans", nargs="*", type=Path, help="scans to open at the start")
    view.add_argument("--model", type=Path, help="model bundle (default: the bundled model)")
    view.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    view.add_argument("--host", default="127.0.0.1", help="address to serve on (default "
                      "127.0.0.1: this machine only)")
    view.add_argument("--port", type=int, default=8080)
    view.add_argument("--token", help="what every browser must present (default: a random "
                      "one; the address to open, token included, is printed)")
    view.add_argument("--upload-limit-mb", type=float, default=UPLOAD_LIMIT_MB, metavar="MB")
    view.set_defaults(handler=_view)

    info = commands.add_parser("info", help="show what a model bundle says about itself")
    info.add_argument("--model", type=Path, help="bundle folder or .zip (default: bundled)")
    info.set_defaults(handler=_info)

    fetch = commands.add_parser("fetch-model", help="download a published model bundle once "
                                "into the user's model cache (or find it there) and print its "
                                "path")
    fetch.add_argument("url", help="the bundle's https address (a .zip)")
    fetch.add_argument("--sha256", required=True, help="the bundle's published sha256")
    fetch.add_argument("--cache", type=Path, help="cache folder (default: the user's model "
                       "cache, or $TUMORCLASSIFIER_CACHE)")
    fetch.set_defaults(handler=_fetch_model)

    phantoms = commands.add_parser("phantoms", help="write a synthetic cohort of all classes")
    phantoms.add_argument("--out", type=Path, required=True)
    phantoms.add_argument("--per-class", type=int, required=True)
    phantoms.add_argument("--seed", type=int, required=True)
    phantoms.add_argument("--workers", type=int, default=1)
    phantoms.add_argument("--spacing", type=float, help="resample to this isotropic voxel "
                          "size in mm (small files)")
    phantoms.add_argument("--generator", type=int, choices=PHANTOM_GENERATORS, default=1,
                          help="1: the phantoms the first default models were trained on; 2: "
                          "each case its own tissue contrast, 1-7 mm slices, noisy stripped "
                          "backgrounds, ghosting, class-overlapping lesion sizes, outlines and "
                          "enhancement (default 1)")
    phantoms.add_argument("--family", choices=PHANTOM_FAMILIES, help="generator 2: draw "
                          "every lesion in this family (default: drawn per case), e.g. to "
                          "hold one family out for validation")
    phantoms.set_defaults(handler=_phantoms)

    train = commands.add_parser("train", help="train a model with the paper's protocol")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="labelled scans to train on")
    source.add_argument("--synthetic", action="store_true", help="heads drawn at training "
                        "time, one drawing family held out (SyntheticConfig's flags)")
    train.add_argument("--out", type=Path, required=True, help="model bundle folder to write")
    train.add_argument("--resume", action="store_true", help="go on from the last checkpoint")
    train.add_argument("--init-from", type=Path, help="start from this bundle's weights (e.g. "
                       "one trained at a lower resolution)")
    train.add_argument("--cache", type=Path, help="preprocessing cache folder "
                       "(default: OUT/training/cache)")
    train.add_argument("--device", default="auto")
    train.add_argument("--name", help="the model's name (default: tumorclassifier, or "
                       "tumorclassifier-synthetic)")
    train.add_argument("--description", default="")
    for config in TRAIN_CONFIGS + (SyntheticConfig,):
        add_config_flags(train, config)
    train.set_defaults(handler=_train)
    evaluate = commands.add_parser("evaluate", help="the paper's metrics and figures on a "
                                   "labelled manifest")
    evaluate.add_argument("--model", type=Path, help="bundle (default: the bundled model)")
    cases = evaluate.add_mutually_exclusive_group(required=True)
    cases.add_argument("--manifest", type=Path, help="labelled scans")
    cases.add_argument("--synthetic", action="store_true", help="fresh heads drawn at "
                       "training time (no registration: the network, heatmap and calibration)")
    evaluate.add_argument("--out", type=Path, required=True)
    synthetic = evaluate.add_argument_group("with --synthetic")
    synthetic.add_argument("--families", nargs="+", choices=SYNTHETIC_FAMILIES,
                           help="drawing families (default: the one the model held out, "
                           "else all)")
    synthetic.add_argument("--per-class", type=int, default=30)
    synthetic.add_argument("--seed", type=int, default=1001, help="pick one no training "
                           "run used, so the heads are fresh (default: 1001)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--precision", default="auto", choices=PRECISIONS)
    evaluate.add_argument("--prefetch", type=_non_negative_int, default=1, metavar="N",
                          help="scans read and registered ahead while the network runs")
    evaluate.set_defaults(handler=_evaluate)
    for sub in (classify, demo, merge, view, info, fetch, phantoms, train, evaluate):
        # SUPPRESS: a sub-command's default must not undo a --debug given before it.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks")
    return parser


def _add_run_options(command, default_out: str = "tumorclassifier_output") -> None:
    command.add_argument("--model", type=Path, help="model bundle folder or .zip "
                         "(default: the bundled default model)")
    command.add_argument("--out", type=Path, default=Path(default_out),
                         help=f"output folder (default: {default_out})")
    command.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    command.add_argument("--precision", default="auto", choices=PRECISIONS)
    command.add_argument("--cam-class", help="class to explain (default: the predicted one)")
    command.add_argument("--force", action="store_true",
                         help="classify even when registration to the atlas looks poor")
    command.add_argument("--no-overlay", action="store_true", help="skip the PNG overlays")
    command.add_argument("--dicom-out", action="store_true",
                         help="also write DICOM results for a DICOM series input: a structured "
                         "report and the heatmap as a parametric map, in new series of its "
                         "study (pip install 'tumorclassifier[dicom]'; docs/dicom.md)")
    command.add_argument("--tta", action="store_true", help="test-time augmentation: average "
                         "the probabilities over every combination of the flips the model "
                         "was trained with (8 passes for the paper's three axes, 2 for "
                         "left-right only)")
    command.add_argument("--prefetch", type=_non_negative_int, default=1, metavar="N",
                         help="scans read and registered ahead, each in its own thread, while "
                         "the network runs (default 1; on a GPU, about the number of CPU "
                         "cores to spare; 0: one after the other)")


def _add_archive_options(command) -> None:
    group = command.add_argument_group("from and to a PACS over DICOMweb (docs/dicom.md)")
    group.add_argument("--dicomweb", metavar="URL", help="a DICOMweb root (https://...): "
                       "classify the post-contrast T1 series of each study and store the DICOM "
                       "results back; credentials from TUMORCLASSIFIER_DICOMWEB_TOKEN or "
                       "TUMORCLASSIFIER_DICOMWEB_BASIC (user:password), or --dicomweb-credentials")
    group.add_argument("--study", action="append", metavar="UID", help="a Study Instance UID "
                       "(repeatable)")
    group.add_argument("--studies", type=Path, metavar="CSV", help="a study list: a 'study' "
                       "column, optionally 'series' and 'case'")
    group.add_argument("--series", metavar="UID", help="the series to classify, when one --study "
                       "has several or no post-contrast T1 series")
    group.add_argument("--dicomweb-credentials", type=Path, metavar="FILE",
                       help="a file whose first line is 'Bearer TOKEN' or 'user:password'")


def _add_scale_out_options(command) -> None:
    group = command.add_argument_group("beyond one machine (docs/cluster.md)")
    group.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                       help="run on Ray (pip install 'tumorclassifier[ray]'): preparation as "
                       "CPU tasks, the network in model workers that load it once; no "
                       "ADDRESS: a local Ray instance, 'auto': the cluster this machine is in")
    group.add_argument("--ray-workers", type=int, default=1, metavar="N",
                       help="model workers with --ray (default 1)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="N",
                       help="CPUs each model worker reserves (default 1)")
    group.add_argument("--gpus-per-worker", type=float, metavar="N",
                       help="GPUs each model worker reserves (default: 1 when the cluster has "
                       "GPUs, else 0)")
    group.add_argument("--num-shards", type=int, metavar="N",
                       help="classify only one of N shards of the cases (e.g. one SLURM array "
                       "task each), into OUT/results.shard-I-of-N.csv; then `merge`")
    group.add_argument("--shard-id", type=int, metavar="I",
                       help="which shard, from 0 to N-1 (e.g. $SLURM_ARRAY_TASK_ID)")


# The configurations `train` takes flags for, one flag per field (settings.py).
TRAIN_CONFIGS = (TrainingConfig, NetworkConfig, PreprocessingConfig)


def add_config_flags(parser: argparse.ArgumentParser, config) -> None:
    """One flag per field of dataclass `config`: --field-name, typed from the annotation, with
    --no-field-name for booleans (argparse's `type=bool` would read "False" as True), a fixed
    count of values for tuples and the field's declared choices."""
    hints = typing.get_type_hints(config)
    group = parser.add_argument_group(config.__name__)
    for field in dataclasses.fields(config):
        if not field.metadata.get("flag", True):
            continue
        flag = f"--{field.name.replace('_', '-')}"
        default = field.default
        hint = hints[field.name]
        options = {"default": default, "help": f"default: {default}"}
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        if hint is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(hint) is tuple:
            item_types = typing.get_args(hint)
            variable = len(item_types) == 2 and item_types[1] is Ellipsis
            group.add_argument(flag, type=item_types[0], nargs="+" if variable else
                               len(item_types), **options | {"default": list(default)})
        else:
            group.add_argument(flag, type=hint, **options)


def config_from_args(config, args: argparse.Namespace):
    """The dataclass `config` with every field that has a flag taken from `args`."""
    values = {}
    for field in dataclasses.fields(config):
        if field.metadata.get("flag", True):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    try:
        return config(**values)
    except ValueError as error:
        raise InputError(str(error)) from None


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted" + ("; finished cases are kept and a re-run skips them"
                               if args.command in ("classify", "demo", "evaluate") else ""),
              file=sys.stderr)
        return 130


def _view(args) -> int:
    from .model_metadata import model_card, read_model_metadata
    from .volume import read_sitk_image
    from .web.access import access_for
    access = access_for(args.host, args.port, args.token)
    card = model_card(read_model_metadata(args.model))  # a bad bundle: its error now
    for scan in args.scans:
        read_sitk_image(scan)
    try:
        from .web.app import ViewerApp, serve
    except ImportError as error:
        raise InputError(f"view needs the web viewer's packages ({error}); install them with "
                         "pip install 'tumorclassifier[web]'") from None
    from .web.session import ViewerSession
    session = ViewerSession(args.model, args.device, args.upload_limit_mb)
    try:
        app = ViewerApp(session, card, args.scans)
        print(f"TumorClassifier viewer: {access.url}", flush=True)
        serve(app, access)
    finally:
        session.close()
    return EXIT_OK


def _info(args) -> int:
    from .bundle import load_bundle
    from .configuration import to_dict
    bundle = load_bundle(args.model)
    print(json.dumps(to_dict(bundle.metadata), indent=2))
    return EXIT_OK


def _fetch_model(args) -> int:
    from .model_cache import fetch_bundle
    print(fetch_bundle(args.url, args.sha256, cache=args.cache))
    return EXIT_OK


def _phantoms(args) -> int:
    from tqdm import tqdm

    from .phantoms.cohort import write_cohort
    if args.per_class < 1:
        raise InputError(f"--per-class must be at least 1, not {args.per_class}")
    if args.family and args.generator != 2:
        raise InputError("--family needs --generator 2")
    with tqdm(total=args.per_class * len(CLASS_CODES), unit="case", file=sys.stderr) as bar:
        manifest = write_cohort(args.out, args.per_class, args.seed, workers=args.workers,
                                progress=lambda row: bar.update(), spacing_mm=args.spacing,
                                generator=args.generator, family=args.family)
    print(f"manifest: {manifest}")
    return EXIT_OK


def _train(args) -> int:
    config, network, preprocessing = (config_from_args(c, args) for c in TRAIN_CONFIGS)
    if args.synthetic:
        from .training.synthetic import train_synthetic
        out = train_synthetic(args.out, config, config_from_args(SyntheticConfig, args),
                              network, preprocessing, device=args.device, resume=args.resume,
                              init_from=args.init_from,
                              name=args.name or "tumorclassifier-synthetic",
                              description=args.description)
        print(f"model bundle: {out}")
        return EXIT_OK
    from .manifest import read_manifest
    from .training.trainer import train
    out = train(read_manifest(args.manifest), args.out, config, network, preprocessing,
                cache_dir=args.cache, device=args.device, resume=args.resume,
                name=args.name or "tumorclassifier", description=args.description,
                init_from=args.init_from)
    if out is not None:  # rank 0 of a distributed run, or a plain run
        print(f"model bundle: {out}")
    return EXIT_OK


def _evaluate(args) -> int:
    from .inference import Classifier
    classifier = Classifier.from_bundle(args.model, args.device, args.precision)
    if args.synthetic:
        return _evaluate_synthetic(classifier, args)
    from .evaluation.evaluator import evaluate
    from .manifest import read_manifest
    cases = read_manifest(args.manifest)
    metrics = evaluate(classifier, cases, args.out, prefetch=args.prefetch, debug=args.debug)
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics['cases']} case(s); "
          f"report: {args.out / 'report.html'}")
    return EXIT_OK


def _evaluate_synthetic(classifier, args) -> int:
    from .evaluation.synthetic import evaluate_synthetic
    if args.per_class < 1:
        raise InputError(f"--per-class must be at least 1, not {args.per_class}")
    held_out = classifier.metadata.training.get("synthetic", {}).get("held_out_family")
    families = tuple(args.families or ([held_out] if held_out else SYNTHETIC_FAMILIES))
    metrics = evaluate_synthetic(classifier, args.out, families, args.per_class, args.seed)
    calibration = metrics["calibration"]
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics['cases']} synthetic head(s) of "
          f"{', '.join(families)}; expected calibration error "
          f"{calibration['expected_calibration_error']:.3f}; report: "
          f"{args.out / 'report.html'}")
    return EXIT_OK


def _classify_command(args) -> int:
    from .background_loading import BackgroundLoadingClassifier
    from .manifest import cases_from_paths, read_manifest
    from .resources import sample_data_dir

    if args.command == "demo":
        # The model loads while the first scans are read and registered.
        classifier = BackgroundLoadingClassifier(args.model, args.device, args.precision)
        manifest = sample_data_dir() / "manifest.csv"
        if not manifest.is_file():
            raise InputError(f"{manifest}: no sample scans are installed")
        return run_batch(classifier, read_manifest(manifest), args)
    if args.dicomweb:
        return _classify_studies(args)
    if not args.scans and not args.manifest:
        raise InputError("give at least one scan, or --manifest CSV")
    cases = (read_manifest(args.manifest) if args.manifest else []) + \
        (cases_from_paths(args.scans) if args.scans else [])
    cases, args.results_csv = _this_shard(cases, args)
    if args.dicom_out:
        _check_dicom_extra()
    if args.ray is not None:
        return _classify_on_ray(cases, args)
    classifier = BackgroundLoadingClassifier(args.model, args.device, args.precision)
    return run_batch(classifier, cases, args)


def _classify_studies(args) -> int:
    _check_dicom_extra()
    if args.scans or args.manifest or args.ray is not None or args.num_shards is not None:
        raise InputError("--dicomweb classifies studies of the archive: leave out scans, "
                         "--manifest, --ray and shards")
    if bool(args.study) == bool(args.studies):
        raise InputError("with --dicomweb, give --study UID (repeatable) or --studies CSV")
    if args.series and len(args.study or []) != 1:
        raise InputError("--series goes with exactly one --study")
    from .background_loading import BackgroundLoadingClassifier
    from .dicom.archive import Archive, session_from
    from .dicom.studies import Study, classify_studies, read_studies
    studies = read_studies(args.studies) if args.studies else [
        Study(uid, uid, args.series) for uid in args.study]
    archive = Archive(args.dicomweb, session_from(args.dicomweb_credentials))
    classifier = BackgroundLoadingClassifier(args.model, args.device, args.precision)
    return _report(classify_studies(classifier, archive, studies, args.out,
                                    cam_class=args.cam_class, force=args.force,
                                    overlay=not args.no_overlay, tta=args.tta))


def _check_dicom_extra() -> None:
    """Said once, before any scan is read, rather than in every row of a batch."""
    try:
        import highdicom  # noqa: F401
    except ImportError as error:
        raise InputError(f"--dicom-out needs the [dicom] extra ({error}); install it with "
                         "pip install 'tumorclassifier[dicom]'") from None


def _this_shard(cases, args):
    """(the cases of this shard, its results table), or all cases and the default table."""
    if args.num_shards is None and args.shard_id is None:
        return cases, None
    if args.num_shards is None or args.shard_id is None:
        raise InputError("--num-shards and --shard-id go together")
    if args.ray is not None:
        raise InputError("--ray spreads the cases itself; leave out --num-shards/--shard-id")
    from .cluster.shards import shard_of, shard_table
    return (shard_of(cases, args.num_shards, args.shard_id),
            shard_table(args.out, args.num_shards, args.shard_id))


def _classify_on_ray(cases, args) -> int:
    try:
        from .cluster.ray_batch import RayOptions, classify_cases_on_ray
    except ImportError as error:
        raise InputError(f"--ray needs Ray ({error}); install it with "
                         "pip install 'tumorclassifier[ray]'") from None
    if args.ray_workers < 1 or args.cpus_per_worker < 0 or (args.gpus_per_worker or 0) < 0:
        raise InputError("--ray-workers must be at least 1, and --cpus-per-worker and "
                         "--gpus-per-worker not negative")
    options = RayOptions(address=args.ray or None, workers=args.ray_workers,
                         cpus_per_worker=args.cpus_per_worker,
                         gpus_per_worker=args.gpus_per_worker)
    summary = classify_cases_on_ray(cases, args.out, args.model, options, device=args.device,
                                    precision=args.precision, cam_class=args.cam_class,
                                    force=args.force, overlay=not args.no_overlay,
                                    tta=args.tta, dicom=args.dicom_out)
    return _report(summary)


def _merge(args) -> int:
    from .cluster.shards import merge_shard_tables
    from .manifest import read_manifest
    cases = read_manifest(args.manifest) if args.manifest else None
    summary = merge_shard_tables(args.out, cases)
    print(f"{summary.table}: {summary.finished} case(s) classified, from the tables of "
          f"{summary.num_shards} shard(s)", file=sys.stderr)
    for label, names in (("shard(s) without a table", summary.missing_shards),
                         ("case(s) in no table", summary.missing_cases),
                         ("case(s) that failed", summary.failed)):
        if names:
            print(f"{len(names)} {label}: {', '.join(map(str, names))}", file=sys.stderr)
    return EXIT_OK if summary.complete else EXIT_INCOMPLETE


def run_batch(classifier, cases, args) -> int:
    from .batch import classify_cases
    summary = classify_cases(classifier, cases, args.out, cam_class=args.cam_class,
                             force=args.force, overlay=not args.no_overlay, debug=args.debug,
                             tta=args.tta, prefetch=args.prefetch,
                             results_csv=getattr(args, "results_csv", None),
                             dicom=args.dicom_out)
    return _report(summary)


def _report(summary) -> int:
    if summary.skipped:
        print(f"skipped {summary.skipped} case(s) already in {summary.table}", file=sys.stderr)
    if summary.failures:
        print(f"{summary.failures} of {summary.attempted} case(s) failed; see {summary.table}",
              file=sys.stderr)
        return EXIT_INTERNAL if summary.internal_errors else EXIT_USER
    print(f"results: {summary.table}", file=sys.stderr)
    return EXIT_OK


def run() -> int:
    """The `tumorclassifier` command: `main`, then an exit without the interpreter's last
    garbage collection over torch's and MONAI's objects (0.6 s of every run on the CPU of
    docs/decisions.md). Everything was written and closed by then; exit handlers still run."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
