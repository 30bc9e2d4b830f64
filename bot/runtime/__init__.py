"""``leadtrail run`` as a service: composition root, leadership, the scheduler and its jobs, the outbox
delivery to owners (Telegram and e-mail), the Telegram connection and the storage alarm."""
