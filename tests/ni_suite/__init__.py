"""Harness running NI's nidaqmx-python tests against the simulated NI card."""
