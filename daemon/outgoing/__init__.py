"""Mail postdesk writes: the addresses it carries, and its composition from templates."""
