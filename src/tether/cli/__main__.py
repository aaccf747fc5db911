"""`python -m tether.cli`: the same as the `tether` command."""

from . import main

main()
