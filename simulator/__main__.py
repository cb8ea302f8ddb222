"""``python -m simulator`` runs the command-line interface."""

from simulator.cli import main

raise SystemExit(main())
