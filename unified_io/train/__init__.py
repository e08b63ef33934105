"""Training: the trainer loop, train state and step, optimiser."""
