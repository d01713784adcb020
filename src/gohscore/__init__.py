"""gohscore: automatic Goh scoring of systemic-sclerosis lung CT (levels, TOT/GG/RET)."""

__version__ = "0.1.0"
