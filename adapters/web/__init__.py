"""The web inbox surface. Until the inbox lands, items are announced in the log."""
