"""The configurations the command line takes flags for, and the named choices and constants
that several modules share, in one place that imports nothing heavy (a model's own settings,
`InferenceConfig`, live in model_metadata.py).

The library's modules, the CLI (which makes its flags from these dataclasses), the worker and
the Slicer module all read them from here, so a choice is never spelt out twice and
`tumorclassifier --help` needs neither torch nor SimpleITK. Fields whose metadata says
`NOT_A_FLAG` are set by the data or nested, not on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .classes import CLASS_CODES

PRECISIONS = ("auto", "float32", "bfloat16")
AUGMENTATIONS = ("paper", "extended")  # training/data.py, augmentation_transforms
SKULL_STRIPPED_CHOICES = ("auto", "yes", "no")
PHANTOM_GENERATORS = (1, 2)  # phantoms/cohort.py
PHANTOM_FAMILIES = ("lumpy", "cluster")  # generator 2's lesion drawing families
# The drawing families of heads drawn at training time (synthesis/shapes.py): generator 2's two
# and two structurally different ones; a synthetic training run holds one out.
SYNTHETIC_FAMILIES = ("lumpy", "cluster", "field", "sdf")
SYNTHETIC_FLIPS = ("left-right", "paper")  # synthesis/dataset.py
HEATMAP_METHODS = ("gradcam", "hirescam")  # gradcam.py
# The browser viewer's upload cap: a 1 mm head in float32 is about 60 MB, a DICOM series a few
# hundred (web/session.py, `tumorclassifier view --upload-limit-mb`).
UPLOAD_LIMIT_MB = 512
# "Near the lesion" for a heatmap's peak: half a cell of the paper's 8^3 Grad-CAM grid at 128^3
# (~30 mm cells); evaluation/metrics.py and the Slicer self-test.
NEAR_LESION_MM = 15.0
# An idle Slicer worker holds the model and the memory of its last scan (about 1.3 GB at 128^3);
# the module releases it after this long without work (its setting
# TumorClassifier/WorkerIdleReleaseSeconds overrides; 0: never).
WORKER_IDLE_RELEASE_S = 15 * 60
NOT_A_FLAG = {"flag": False}


def choices(allowed: tuple) -> dict:
    return {"choices": allowed}


@dataclass(frozen=True)
class RegistrationConfig:
    working_spacing_mm: float = 3.0
    histogram_bins: int = 32
    sampling_fraction: float = 0.1
    seed: int = 20210901  # fixed: random metric sampling would otherwise make runs differ
    rigid_shrink_factors: tuple[int, ...] = (4, 2, 1)
    rigid_smoothing_mm: tuple[float, ...] = (4.0, 2.0, 0.0)
    affine_shrink_factors: tuple[int, ...] = (2, 1)
    affine_smoothing_mm: tuple[float, ...] = (2.0, 0.0)
    iterations: int = 100
    learning_rate: float = 1.0
    min_step: float = 0.01  # speed against accuracy: docs/decisions.md
    # Quality gates: normalised cross-correlation with the atlas inside its brain, and the
    # scale factors of the affine (a real head is not squashed to half or stretched to double).
    # 0.05: the 6.5 mm thick-slice TCGA scan, well aligned, reaches only 0.10.
    min_correlation: float = 0.05
    scale_range: tuple[float, float] = (0.67, 1.5)


@dataclass(frozen=True)
class PreprocessingConfig:
    input_shape: tuple[int, int, int] = (128, 128, 128)  # network grid (I, J, K)
    bias_correction: bool = False  # N4; off by default as in the paper's code
    skull_stripped: str = field(default="auto", metadata=choices(SKULL_STRIPPED_CHOICES))
    # (is the input already skull-stripped?)
    # "auto" decides by the volume of the largest bright region (the head, or the brain alone),
    # which noise or interpolation in a stripped scan's background does not change: an adult
    # brain is 1.0-1.8 L, a head with skull and scalp 3 L and more (the real scans: stripped
    # 1.14-1.72 L, with skull 3.22-3.95 L). Between the two bounds the scan is registered to
    # both atlases and the better match is kept; so is it when the first choice fails.
    stripped_max_litres: float = 2.0
    with_skull_min_litres: float = 2.6
    # A stripped scan whose background is one exact value (at least this share of the voxels)
    # uses "not that value" as its brain; otherwise the bright region itself.
    stripped_mode_fraction: float = 0.6
    registration: RegistrationConfig = field(default_factory=RegistrationConfig,
                                             metadata=NOT_A_FLAG)

    def __post_init__(self) -> None:
        if self.skull_stripped not in SKULL_STRIPPED_CHOICES:
            raise ValueError(f"skull_stripped must be one of {SKULL_STRIPPED_CHOICES}, "
                             f"not {self.skull_stripped!r}")
        shape = tuple(self.input_shape)
        if len(shape) != 3 or any(int(s) < 16 or int(s) % 16 for s in shape):
            raise ValueError(f"input_shape must be 3 multiples of 16, not {shape}")


@dataclass(frozen=True)
class NetworkConfig:
    in_channels: int = field(default=1, metadata=NOT_A_FLAG)
    num_classes: int = field(default=len(CLASS_CODES), metadata=NOT_A_FLAG)  # from the data
    base_filters: int = 16  # doubles at each level: 16, 32, 64, 128, 256
    depth: int = 5
    dropout: float = 0.3  # spatial: whole channels
    negative_slope: float = 0.3
    norm_eps: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("in_channels", "num_classes", "base_filters", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, not {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")

    @property
    def downsampling(self) -> int:
        """How many times smaller the deepest feature map is than the input."""
        return 2 ** (self.depth - 1)


@dataclass(frozen=True)
class TrainingConfig:
    learning_rate: float = 5e-4
    batch_size: int = 5
    max_epochs: int = 200
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    early_stopping_patience: int = 50
    weight_decay_l2: float = 1e-5  # on conv and dense kernels, added to the loss
    flip_probability: float = 0.5
    # "paper": the paper's flips only; "extended": flips, affine, intensity, blur and noise
    # (training/data.py, augmentation_transforms)
    augmentation: str = field(default="paper", metadata=choices(AUGMENTATIONS))
    folds: int = 8
    fold: int = 0  # which fold validates; the model trains on all the others
    seed: int = 0
    loader_workers: int = 1
    precision: str = field(default="auto", metadata=choices(PRECISIONS))
    max_hours: float = 0.0  # stop after this much wall time, preprocessing included (0: no
    # limit), keeping the best checkpoint

    def __post_init__(self) -> None:
        for name, allowed in (("augmentation", AUGMENTATIONS), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not "
                                 f"{getattr(self, name)!r}")


@dataclass(frozen=True)
class SyntheticConfig:
    """`train --synthetic`: heads drawn at training time (synthesis/) instead of a manifest.
    The optimiser, batch, precision, seed and time limit come from TrainingConfig; an
    evaluation every `evaluate_every` samples plays the part of an epoch (learning-rate
    plateau, early stopping, checkpoints, `--max-epochs`)."""
    held_out_family: str = field(default="cluster", metadata=choices(SYNTHETIC_FAMILIES))
    # (never drawn for training; the best checkpoint is chosen on it)
    max_samples: int = 0  # stop after this many training heads in all (0: no limit)
    evaluate_every: int = 1024  # training heads between evaluations and checkpoints
    validation_per_class: int = 20  # heads a class in each validation set
    # "left-right": flip the left-right axis only (anatomy stays plausible; classes are
    # defined by location); "paper": every axis, as the paper
    flips: str = field(default="left-right", metadata=choices(SYNTHETIC_FLIPS))

    def __post_init__(self) -> None:
        if self.held_out_family not in SYNTHETIC_FAMILIES:
            raise ValueError(f"held_out_family must be one of {', '.join(SYNTHETIC_FAMILIES)}, "
                             f"not {self.held_out_family!r}")
        if self.flips not in SYNTHETIC_FLIPS:
            raise ValueError(f"flips must be one of {', '.join(SYNTHETIC_FLIPS)}, not "
                             f"{self.flips!r}")
        for name in ("evaluate_every", "validation_per_class"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if int(self.max_samples) < 0:
            raise ValueError(f"max_samples must be >= 0, not {self.max_samples}")
