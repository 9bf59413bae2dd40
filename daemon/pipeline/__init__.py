"""The steps one message takes: entry, tickets, acknowledgement, agents, bounces."""
