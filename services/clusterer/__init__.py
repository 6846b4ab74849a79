"""pointillist.clusterer: MIRO graph networks, CAML, DBSCAN/HDBSCAN and cluster metrics."""
