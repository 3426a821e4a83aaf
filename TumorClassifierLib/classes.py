"""The seven classes, in the index order of the authors' code (Chakrabarty et al. 2021)."""

from __future__ import annotations

from .errors import InputError

CLASS_CODES: tuple[str, ...] = (
    "HGG", "LGG", "METS", "PITADE", "ACSCHW", "HEALTHY", "MENINGIOMA",
)

DISPLAY_NAMES: dict[str, str] = {
    "HGG": "High-grade glioma",
    "LGG": "Low-grade glioma",
    "METS": "Brain metastases",
    "PITADE": "Pituitary adenoma",
    "ACSCHW": "Acoustic neuroma (vestibular schwannoma)",
    "HEALTHY": "No tumour",
    "MENINGIOMA": "Meningioma",
}

# Spellings users and data sets commonly use for the same class.
_ALIASES = {"MEN": "MENINGIOMA", "MET": "METS", "PIT": "PITADE", "AN": "ACSCHW", "VS": "ACSCHW",
            "NORMAL": "HEALTHY", "HLTH": "HEALTHY"}


def canonical_code(name: str, codes: tuple[str, ...] = CLASS_CODES) -> str:
    """Return the class code for a code, alias or index given as text; InputError otherwise."""
    text = str(name).strip()
    if text.isdigit() and int(text) < len(codes):
        return codes[int(text)]
    upper = _ALIASES.get(text.upper(), text.upper())
    if upper in codes:
        return upper
    raise InputError(f"unknown class {name!r}; choose one of {', '.join(codes)}")
