"""The Discord surface: review cards as embeds with persistent buttons (discord.py)."""
