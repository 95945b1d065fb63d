"""Release targets: one module per target, each a ``bot.ports.DeliveryTarget``."""
