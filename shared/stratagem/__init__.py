"""Stratagem: plain-English trading ideas turned into sandboxed, point-in-time strategies.

The package is the pure core; Cloud Functions under ``functions/`` and the CLI are thin
edges around it. One module (or subpackage) per domain concept: ``data`` (market data,
point in time), ``sandbox`` (validation and isolated execution), ``engines`` (backtest,
screen, alert replay), ``errors``, ``settings``.
"""

__version__ = "0.1.0"
