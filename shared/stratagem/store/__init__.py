"""Persistence ports: strategies with versions (and, later, jobs and alert logs)."""
