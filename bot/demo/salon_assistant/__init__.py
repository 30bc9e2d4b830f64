"""The demo salon's assistant: a rule-based dialog (no LLM), the model calls it pretends to make (their
tokens), and its aiogram bot with the tracker."""
