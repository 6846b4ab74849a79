"""pointillist.localizer: camera frames -> localizations (CNN and maximum-likelihood fitter)."""
