"""Shared helpers that every chapter of the book imports: plotting, toy data, GPU checks, site tools."""
