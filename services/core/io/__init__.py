"""Localization table file formats: ThunderSTORM CSV, Picasso HDF5, native Parquet."""
