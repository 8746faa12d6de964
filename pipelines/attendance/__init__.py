"""Attendance rules: shift definitions and the pure functions that turn punches into attendance days."""
