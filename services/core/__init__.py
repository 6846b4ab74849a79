"""pointillist.core: tables, file formats, bus, RPC bootstrap, metrics and configuration."""
