"""The Discord adapter: slash commands, buttons and server stickers on discord.py."""
