"""modelward: static ML supply-chain integrity scanner.

Nothing in this package ever deserializes or executes model content; every
inspector reads bytes and reasons about them.
"""

__version__ = "0.1.0"
