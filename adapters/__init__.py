"""The edges of signoff: surfaces (web, Slack, Discord), release targets and LLM drafting.

Each adapter implements a Protocol from :mod:`bot.ports` and translates between its
platform and the core's neutral types.
"""
