"""The web inbox: the embedded default surface, with sign-in, audit log and dashboard."""
