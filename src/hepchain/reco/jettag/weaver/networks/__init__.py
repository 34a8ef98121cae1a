"""weaver network configs (``--network-config``), one per model, self-contained (torch and
weaver only) like the example configs of ``jet-universe/particle_transformer/networks``:
``get_model(data_config, **options) -> (model, model_info)`` and ``get_loss``. The sizes come
as weaver network options (``-o name value``) with the values of our preset, and ``seed``
seeds torch and NumPy before the model is built (weaver itself sets no seed; it shuffles with
NumPy's global generator). The study copies them into the run directory, so the logged weaver
command runs again by hand."""
