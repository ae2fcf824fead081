"""The experiment suite: one file per verified property (installed as chaos.experiments)."""
