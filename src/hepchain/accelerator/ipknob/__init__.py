"""IP-knob tuning at a SuperKEKB-like collider (seed 004).

Modules, one job each: ``machine`` (parameters, 12 knobs, optics of the knobs),
``luminosity`` (overlap integral with crossing angle, hourglass, beam-beam blow-up),
``backgrounds`` (Touschek-, beam-gas- and luminosity-like rates), ``simulator`` (time evolution
and 1 Hz readouts), ``scan`` (linear scans), ``operators`` (simulated set-value choices),
``dataset`` (generation, filters, resampling, scalers, splits), ``logs`` (real-log schema and
loader), ``models`` (CNN, WS), ``baselines`` (max L_sp, peak fits), ``setvalue`` (training and
evaluation of one split), ``tuning`` (linear scans, BO, Nelder–Mead), ``plots``, ``study``.
"""
