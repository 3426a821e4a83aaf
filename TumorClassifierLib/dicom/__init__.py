"""Results as DICOM, for a scan that came from DICOM (the `[dicom]` extra: highdicom):

    source  the source series read back (pydicom), in slice order, checked as one series
    codes   the coded concepts the objects use (DICOM's own, and this project's class codes)
    uids    UIDs that are the same for the same result and differ for any other
    objects a Comprehensive 3D SR (TID 1500) of the classification, and the heatmap as a
            Parametric Map on the source's frame of reference
    write   both objects for one classified case, written atomically
    archive a PACS over DICOMweb (dicomweb-client): find, retrieve, store and check
    series  a scan written as an MR image series (phantoms into an archive)
    studies `classify --dicomweb`: the studies of an archive as a resumable batch

Nothing outside this package imports it at file scope. docs/dicom.md says which templates,
codes and attributes, and why.
"""
