"""``python -m hepgan.cli``: the command line."""

from hepgan.cli import main

main()
