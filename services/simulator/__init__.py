"""pointillist.simulator: camera frames, point clouds, particles, projections, with truth."""
