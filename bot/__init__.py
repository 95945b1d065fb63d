"""signoff core: domain, policy, service, integrator API and wiring.

Nothing in this package imports a platform SDK or ``adapters``; adapters implement the
Protocols in :mod:`bot.ports`. Only the composition root (:mod:`bot.app`) and the CLI
wire concrete adapters in.
"""
