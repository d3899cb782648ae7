"""mmapp.bench."""
