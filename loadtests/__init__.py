"""Locustfiles (installed as chaos.loadtests; found through importlib.resources)."""
