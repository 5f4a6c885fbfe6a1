"""Verification: reference outputs, comparison, toolchains and runners."""
