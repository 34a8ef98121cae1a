"""Fast calorimeter simulation: generative shower models and CaloChallenge metrics."""
