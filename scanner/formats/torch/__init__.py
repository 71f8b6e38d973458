"""PyTorch formats: the torch.save zip, TorchScript, torch.package and torch.export (.pt2) archives.

The legacy (pre-1.6) tar/pickle format is ``formats.torch_legacy``."""
