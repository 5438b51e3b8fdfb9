"""Refinement (stage 3): raw events of a period into one clean, current profile per customer."""
