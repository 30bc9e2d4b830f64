"""A salon's Telegram bot, the way most aiogram bots are laid out: its own ``bot`` package."""
