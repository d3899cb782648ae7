"""mmapp.daq."""
