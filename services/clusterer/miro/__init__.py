"""MIRO: recurrent graph-network transformation that squeezes clusters before DBSCAN."""
