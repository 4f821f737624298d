"""Rollouts: the protocol, the batched multi-turn environment, the episode record, the sampler."""
