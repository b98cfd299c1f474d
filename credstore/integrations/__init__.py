"""Entry points for other programs: the ``keyring`` library's backend and git's credential helper."""
