"""The embedded default: the whole platform on one machine, no account, no network."""
