"""Model sessions: the backend protocol, SAM (torch), the weights-free classic backend, and the
checkpoints, registry and downloads behind them."""
