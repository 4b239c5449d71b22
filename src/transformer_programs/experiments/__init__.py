"""Experiments over many runs on Ray Tune: grid search (sweep) and length generalization."""
