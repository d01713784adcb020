"""Tests of gohscore.levels."""
