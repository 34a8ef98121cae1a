"""Online deployment: fixed-point (hls4ml) emulation, quantisation-aware training, conifer BDTs,
ONNX export and CPU latency (study ``deploy``; see docs/deploy.md)."""
