"""pointillist.reconstructor: HOLLy, a 3D point model from 2D views of one structure."""
