"""The browser viewer of `tumorclassifier view` (the `[web]` extra: trame-slicer): `session`
(one browser session's files, uploads and classification through the worker process; no
trame), `access` (binding and the token), `app` (the trame-slicer page)."""
