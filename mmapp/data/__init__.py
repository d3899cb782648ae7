"""mmapp.data."""
