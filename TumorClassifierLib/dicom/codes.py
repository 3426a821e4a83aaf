"""The coded concepts of the DICOM results. DICOM's own codes (DCM, LN, UCUM) where a concept
has one; the seven classes in a private coding scheme (designators beginning "99" are private
by DICOM PS3.16): no standard terminology at hand here covers all seven, and a code that is
not verified is worse than a private one that says what it is."""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

CLASS_SCHEME = "99TUMCLS"  # this project's classes; the code values are the class codes

COMMENT = codes.DCM.Comment  # a warning that came with the result
NO_UNITS = codes.UCUM.NoUnits
PROCEDURE = codes.LN.BrainMRI
HEATMAP_QUANTITY = codes.DCM.GradientWeightedClassActivation


def class_concept(code: str, display_name: str) -> CodedConcept:
    return CodedConcept(code, CLASS_SCHEME, display_name)


def probability_concept(code: str, display_name: str) -> CodedConcept:
    """"Probability of <class>": one measurement per class."""
    return CodedConcept(f"P-{code}", CLASS_SCHEME, f"Probability of {display_name}"[:64])
