"""The ground floor every stage stands on: opening a package (folder, rdf or zip; formats 0.3 to 0.5), reading its
description faithfully (tensors, axes, sizes, halos, scales, offsets, raw data types, weights and their files),
files (hashing, atomic writes) and the table of weight formats. It imports no stage (trainers, packaging,
validators, inference): they import it."""
