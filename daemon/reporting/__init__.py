"""`postdesk report` drawn as a table, JSON, CSV or an HTML page with charts."""
