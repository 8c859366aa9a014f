"""Point-in-time ticket features: pure functions of (tickets, events, as_of)."""
