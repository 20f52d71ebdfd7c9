"""`python -m exporter.cli`."""

from exporter.cli import main

main()
