"""Synthetic brain MRI with known diagnoses, for training and testing without patient data.

cohort (a case and a cohort on disk), anatomy (the atlas brain as a canvas), generator1_lesions
and generator2_lesions (each class's lesion, by generator), lesion_sites (where lesions go and
what surrounds them, for both), lesion_forms (generator 2's drawing families), acquisition (how
generator 2 images the head). Nothing is imported here, so that importing one
module does not import the others.
"""
