"""Consumers of a run's events: the views (package views/), --save (transcript.py), later the log."""
