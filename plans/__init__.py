"""Example game-day plans, installed as chaos.plans."""
