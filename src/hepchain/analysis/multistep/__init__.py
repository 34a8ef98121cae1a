"""Multi-step learning from tau ID to H→ττ event classification (study ``multistep``, seed 001,
issue 19)."""
