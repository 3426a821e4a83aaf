"""Labelled heads drawn at training time, directly in atlas space at the network's resolution:
no files, no registration. A head is reproducible from its seed.

space (the atlas's tissue channels and the network grid), shapes (the lesion drawing
families), anatomy (normal variation and enhancing structures), lesions (where each class
puts what), scanner (what scanning and our preprocessing leave behind), heads (one head from a
seed), dataset (torch datasets of heads by seed). Nothing is imported here.
"""
