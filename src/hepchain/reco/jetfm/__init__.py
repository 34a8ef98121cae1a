"""Jet foundation model (study ``jetfm``): a VQ-VAE constituent tokeniser, a ParT backbone
pre-trained without labels (masked particle modelling, generative next-token prediction) and
fine-tuned with few labels."""
