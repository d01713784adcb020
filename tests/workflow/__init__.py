"""Tests of the Snakemake workflow (workflow/)."""
