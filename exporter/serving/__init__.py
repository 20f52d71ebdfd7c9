"""Serving: immutable snapshots with prebuilt bytes, their publication, self-metrics and HTTP."""
