"""Tests of gohscore.commands."""
