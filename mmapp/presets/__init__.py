"""mmapp.presets."""
