"""``python -m anyrec`` is the ``anyrec`` command."""

from anyrec.cli import main

main()
