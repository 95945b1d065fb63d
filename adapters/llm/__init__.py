"""Language-model adapters: implementations of :class:`bot.drafting.Drafter`."""
