"""Where results go: the write-back database, Zendesk payloads and pushes, the terminal queue view."""
