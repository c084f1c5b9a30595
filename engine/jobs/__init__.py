"""The commands as library calls: score, watch, rule tests, regress, backtest, the NATS source, the pytest plugin."""
