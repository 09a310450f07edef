"""The Telegram adapter (python-telegram-bot): commands, sticker delivery, personal sticker packs."""
