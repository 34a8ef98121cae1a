"""btag side by side with salt-ml (the ATLAS flavour-tagging framework): our jets in salt's
HDF5 layout (:mod:`.layout`), a salt GN1 configuration sized like our GN1 (``GN1-like.yaml``)
and salt's predictions evaluated with btag's own metrics (:mod:`.predictions`).
See docs/btag.md, "Side by side with salt-ml"."""
