"""Events link: Pythia 8 processes, Delphes-like detector response, FastJet jets, truth labels."""
