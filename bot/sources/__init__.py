"""Clients for systems modelbot reads from (MLflow, …).

Each module is self-contained: it speaks one system's protocol and hands back plain
dataclasses, so the domain code that consumes them never does network I/O itself.
"""
