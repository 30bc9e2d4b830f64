"""The YCLIENTS link (and Altegio, its international edition): its webhooks become bookings, visits,
no-shows and payments on the clients' timelines; a reconciliation through its REST API fetches what a
lost webhook would have said."""
