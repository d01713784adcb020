"""Subcommands of ``gohscore``: each module has ``main(argv)`` parsing its own options."""
