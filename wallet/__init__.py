"""Torv's wallet, layered like Electrum: pure crypto -> keystore -> wallet -> chain backend."""
