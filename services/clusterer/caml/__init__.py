"""CAML: per-localization classification from nearest-neighbour distance sequences.

Williamson et al. (2020). `features` (distance sequences), `model` (the paper's dense
and conv+LSTM networks, shipped weights in weights/), `simulate` (training fields),
`training` and `train_cli` (`pointillist clusterer train caml`), `clusterer`
(`CamlClusterer`: classify, form clusters, cluster shapes).
"""
