"""The three execution modes over one sandboxed strategy: backtest, screen, alert replay."""
