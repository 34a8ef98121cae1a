"""Beam link of the chain: IP-knob tuning (ipknob/) and the linac machine with generative surrogates and RL (linac/)."""
