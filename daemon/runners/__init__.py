"""Process code: service loop, SMTP/LMTP listener, IMAP pollers, outbox sender, metrics."""
