"""mmapp.sim."""
