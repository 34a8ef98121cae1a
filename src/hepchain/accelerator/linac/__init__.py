"""Linac machine (cheetah), operations logs, generative simulators and RL steering (seed 000)."""
