"""Tests of gohscore.phantom."""
