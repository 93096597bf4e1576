"""Services (health, elder care, security, alerts) built on capability kinds."""
