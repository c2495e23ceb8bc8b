"""Google Workspace Calendar audit events through the Admin SDK Reports API."""
