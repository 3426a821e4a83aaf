"""Screenshots of the module's view for docs/: a bundled sample classified with the default
model, shown in a real MRML scene and rendered offscreen by vtkMRMLSliceLogic (slicer-core).

    .venv/bin/python scripts/render_screenshots.py [--sample ACSCHW] [--out docs]
"""

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="MENINGIOMA")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import slicer
    from matplotlib import pyplot

    from TumorClassifierLib.inference import Classifier
    from TumorClassifierLib.manifest import read_manifest
    from TumorClassifierLib.mrml_bridge import render_slice, show_result
    from TumorClassifierLib.resources import sample_data_dir

    case = {c.label: c for c in read_manifest(sample_data_dir() / "manifest.csv")}[args.sample]
    result = Classifier.from_bundle(None, device="cpu").classify(case.path)
    scene = slicer.vtkMRMLScene()
    colors = slicer.vtkMRMLColorLogic()
    colors.SetMRMLScene(scene)
    volumes = slicer.vtkSlicerVolumesLogic()
    volumes.SetMRMLScene(scene)
    scan = volumes.AddArchetypeVolume(str(case.path), case.name)
    scan.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    heatmap = show_result(scene, scan, result)["heatmap"]
    import numpy as np

    from TumorClassifierLib.volume import read_volume
    # Slices through the tumour (the sample's lesion mask), so the picture shows the heatmap
    # where a reader looks first.
    lesion = read_volume(case.lesion_mask)
    k, j, i = (float(np.mean(axis)) for axis in np.nonzero(lesion.array))
    centre_lps = (lesion.index_to_world() @ [i, j, k, 1])[:3]
    figure, axes = pyplot.subplots(1, 3, figsize=(15, 5.4), facecolor="black")
    for axis, orientation in zip(axes, ("Axial", "Coronal", "Sagittal")):
        pixels, _ = render_slice(scene, scan, heatmap, centre_lps * [-1, -1, 1], orientation,
                                 320)
        axis.imshow(pixels[::-1, :, :3])
        axis.set_title(orientation, color="white")
        axis.axis("off")
    name = result.display_names[result.predicted_class]
    method = result.heatmap_method.split(" (")[0]  # "hirescam at encoder level 2"
    figure.suptitle(f"{case.name} (true: {case.label})\npredicted {name} "
                    f"{result.confidence:.0%}; heatmap: {method}; slices through the tumour",
                    color="white")
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "screenshot_overlay.png", dpi=80, facecolor="black",
                   bbox_inches="tight")
    print(args.out / "screenshot_overlay.png")


if __name__ == "__main__":
    main()
