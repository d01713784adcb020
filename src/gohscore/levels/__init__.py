"""The 3D level network: resident data and crops, per-fold training, sliding-window decoding, prediction."""
