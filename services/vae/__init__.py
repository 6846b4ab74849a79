"""pointillist.vae: PC-VAE detection of continuous structural heterogeneity in particles."""
