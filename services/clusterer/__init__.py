"""pointillist.clusterer: MIRO graph-network clustering, CAML, DBSCAN/HDBSCAN and cluster metrics."""
