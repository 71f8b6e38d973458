"""Keras files: HDF5 (.h5, legacy .keras) and the zip-based .keras format."""
