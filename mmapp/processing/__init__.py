"""mmapp.processing."""
