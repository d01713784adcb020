"""Tests of gohscore, laid out like the package (tests/levels/ for gohscore.levels, ...)."""
