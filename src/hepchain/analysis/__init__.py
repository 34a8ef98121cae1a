"""Physics analysis: flow-based anomaly detection and flow-based parameter scans."""
