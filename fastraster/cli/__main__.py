"""``python -m fastraster.cli``."""

from fastraster.cli import main

main()
