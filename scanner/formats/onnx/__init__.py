"""ONNX models: a bounded wire-level skeleton, graph checks, and the onnx library only inside inspection."""
