"""Tests of gohscore.scores."""
