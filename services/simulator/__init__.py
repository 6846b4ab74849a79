"""pointillist.simulator: camera frames, point clouds, particles and projections with ground truth."""
