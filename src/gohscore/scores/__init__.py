"""The 2D score side of the cascade: slices at the levels, lung mask, sampling, synthesis, training, inference."""
