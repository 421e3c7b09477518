"""Inputs made or fetched locally for the paper-scale path: stand-ins for the hub (rehearsal)."""
