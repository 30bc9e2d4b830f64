"""A small salon assistant bot that logs everything to LeadTrail through bot.sdk."""
