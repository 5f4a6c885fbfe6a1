"""Errors, typed configuration, atomic artifacts and console set-up shared by every stage."""
