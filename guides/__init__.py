"""Runnable paigeant guides; importable as ``guides.<name>`` from the repository root."""
