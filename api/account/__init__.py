"""Account recovery and verification: messages with links, the outbox and its sender."""
