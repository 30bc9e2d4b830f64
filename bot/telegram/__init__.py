"""The owners' side in Telegram: the dispatcher, access filters, the audit middleware, one router per
command (``handlers``), the buttons (``views``) and the few services only Telegram uses."""
