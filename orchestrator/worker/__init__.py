"""What every Ray Train worker runs: the loop, its batches, evaluation, checkpoints."""
