"""The framework: what a reward net is.

The abstract nets and wrappers, preprocessing, network blocks, specs (a net as plain
data and back) and the conformance checks. Imports the registry layer below it.
"""
