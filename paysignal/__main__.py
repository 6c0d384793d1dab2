"""`python -m paysignal`: the same as the `paysignal` console script."""

from paysignal.cli import main

main()
