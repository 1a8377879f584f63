"""The ACTS chain (pyacts): simulation of guns and collisions, and the classic reconstruction."""
