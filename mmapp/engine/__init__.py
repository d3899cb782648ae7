"""mmapp.engine."""
