"""The demo salon's assistant: a rule-based dialog (no LLM) and its aiogram bot with the tracker."""
