"""What one classification gives: probabilities, the predicted class, the heatmap and how it
was obtained. Imports no torch, so the Slicer module can rebuild a worker's result from its
files on the application's main thread (`from_dict`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .volume import Volume


@dataclass(frozen=True, eq=False)
class ClassificationResult:
    source: str
    probabilities: dict[str, float]  # class code -> probability, in the model's class order
    display_names: dict[str, str]
    predicted_class: str
    cam_class: str
    heatmap: Volume  # Grad-CAM in [0, 1] on the input's own voxels and geometry
    registration: dict
    timings: dict[str, float]
    device: str
    precision: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    augmentations: int = 1  # network passes averaged: 1, or 8 with test-time flips
    heatmap_method: str = ""  # e.g. "hirescam at encoder level 2 (32x32x32 grid)"
    # What produced it, as a run report: the model's name and weights' sha256, and the
    # versions of this library, torch, MONAI, SimpleITK, numpy and Python.
    model: dict = field(default_factory=dict)
    software: dict = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.predicted_class]

    @property
    def entropy(self) -> float:
        """Predictive entropy of the probabilities divided by log(classes): 0 when one class
        has everything, 1 when all are equally likely."""
        p = np.asarray(list(self.probabilities.values()), dtype=np.float64)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum() / np.log(len(self.probabilities)))

    def to_dict(self) -> dict:
        """Everything but the heatmap array, JSON-ready."""
        return {
            "source": self.source,
            "predicted_class": self.predicted_class,
            "predicted_name": self.display_names[self.predicted_class],
            "confidence": self.confidence,
            "entropy": self.entropy,
            "augmentations": self.augmentations,
            "probabilities": self.probabilities,
            "display_names": self.display_names,
            "cam_class": self.cam_class,
            "heatmap_method": self.heatmap_method,
            "registration": self.registration,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "device": self.device,
            "precision": self.precision,
            "warnings": list(self.warnings),
            "model": self.model,
            "software": self.software,
        }

    def table(self) -> str:
        """A readable table of all classes, most probable first."""
        width = max(len(name) for name in self.display_names.values())
        lines = [f"{self.source}: {self.display_names[self.predicted_class]} "
                 f"({self.confidence:.1%})"]
        for code, probability in sorted(self.probabilities.items(), key=lambda kv: -kv[1]):
            bar = "#" * int(round(probability * 30))
            lines.append(f"  {code:<10} {self.display_names[code]:<{width}} "
                         f"{probability:7.2%}  {bar}")
        flips = f", mean of {self.augmentations} flipped passes" if self.augmentations > 1 else ""
        lines.append(f"  entropy {self.entropy:.2f} (0 certain .. 1 uniform){flips}")
        lines.extend(f"  warning: {text}" for text in self.warnings)
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, record: dict, heatmap: Volume) -> ClassificationResult:
        """The inverse of `to_dict` (as written to <case>_probabilities.json), given the
        heatmap read back from its file."""
        return cls(source=record["source"], probabilities=dict(record["probabilities"]),
                   display_names=dict(record["display_names"]),
                   predicted_class=record["predicted_class"], cam_class=record["cam_class"],
                   heatmap=heatmap, registration=dict(record.get("registration", {})),
                   timings=dict(record.get("timings_s", {})), device=record["device"],
                   precision=record["precision"],
                   warnings=tuple(record.get("warnings", ())),
                   augmentations=int(record.get("augmentations", 1)),
                   heatmap_method=record.get("heatmap_method", ""),
                   model=dict(record.get("model", {})),
                   software=dict(record.get("software", {})))
